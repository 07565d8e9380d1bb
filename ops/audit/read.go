package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// MaxRecordBytes bounds one record line when reading (a record with a
// client certificate is a few KiB).
const MaxRecordBytes = 1 << 20

// Read decodes the records of an audit log, one JSON object per line,
// calling fn with each record's line number. A line that is not a record
// is passed to fn with a nil record and its error; fn decides whether to go
// on. Read stops at the first error fn returns.
func Read(r io.Reader, fn func(line int, rec *Record, err error) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxRecordBytes)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			if ferr := fn(line, nil, fmt.Errorf("line %d: not an audit record: %w", line, err)); ferr != nil {
				return ferr
			}
			continue
		}
		if err := fn(line, &rec, nil); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}
