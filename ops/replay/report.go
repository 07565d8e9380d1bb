package replay

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/vaultwall/vaultwall/ops/shadow"
)

// Write prints the summary, the changes by stage and code, and every
// request whose outcome changes.
func (rep *Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "records\t%d\n", rep.Total)
	fmt.Fprintf(tw, "unchanged\t%d\n", rep.Unchanged)
	fmt.Fprintf(tw, "allow → deny\t%d\n", rep.ByKind[shadow.WouldDeny])
	fmt.Fprintf(tw, "deny → allow\t%d\n", rep.ByKind[shadow.WouldAllow])
	fmt.Fprintf(tw, "deny → other deny\t%d\n", rep.ByKind[shadow.Changed])
	fmt.Fprintf(tw, "not replayable\t%d\n", rep.NotReplay)
	if rep.Malformed > 0 {
		fmt.Fprintf(tw, "malformed lines\t%d\n", rep.Malformed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Transition) > 0 {
		fmt.Fprintln(w, "\nby stage and code:")
		keys := make([]string, 0, len(rep.Transition))
		for k := range rep.Transition {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%d\n", k, rep.Transition[k])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Changes) > 0 {
		fmt.Fprintln(w, "\nchanged decisions:")
		fmt.Fprintln(tw, "  time\tdecision\toperation\tcaller\tclient\tbefore → after\trule")
		for _, c := range rep.Changes {
			caller := c.Caller
			if caller == "" {
				caller = "-"
			}
			rule := c.Rule
			if rule == "" {
				rule = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Time.UTC().Format("2006-01-02T15:04:05Z"), c.DecisionID,
				c.Operation, caller, orDash(c.Client), transition(c), rule)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range rep.Problems {
			fmt.Fprintln(w, "  "+p)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
