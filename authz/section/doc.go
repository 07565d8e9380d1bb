// Package section is what the validation of every configuration section
// shares: the located error (Error: file, line and field path), the list
// that validation reports into (Errors), the sentinel errors that say what
// kind of problem each is, and the values sections write (Duration) and
// check (IsGUID).
//
// It sits below the stages so that each stage package owns its section's
// type and Validate without importing config, while config, the stages and
// rego report one error type that callers test with errors.Is and
// errors.As. config gives an Error its file and line (Config.Annotate).
//
// Imports: the standard library only.
package section
