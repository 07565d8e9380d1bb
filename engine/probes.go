package engine

// PolicyProbe reports the authorization policy in force: ready when one is
// compiled, with the operator files it holds and its generation. A policy
// that failed to reload shows in /readyz's config.lastError while this one
// keeps serving.
func PolicyProbe(rt *Runtime) []Probe {
	files := rt.PolicyFiles
	if files == nil {
		files = []string{}
	}
	return []Probe{{Name: "policy", Ready: rt.Policy != nil, Detail: map[string]any{
		"generation": rt.Generation, "operatorFiles": files,
	}}}
}
