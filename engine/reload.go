package engine

import "context"

// Reload loads and builds the configuration even when its inputs have not
// changed (SIGHUP): each call counts into the inputs' digest, so the next
// load rebuilds — issuer discovery and key sets are fetched afresh and a new
// generation goes into force — or, when the build fails, the error is
// returned and the running runtime kept, as for Load. A configuration
// already refused is tried again.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloads.Add(1)
	return e.Load(ctx)
}
