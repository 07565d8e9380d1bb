// Command mutate is vaultwall's mutation-testing harness, run by `make
// mutate`: it changes one thing at a time in the security-critical code — a
// comparison, a boolean operator, a negation, a guard, a case-insensitive
// comparison, a condition of the shipped Rego policy — runs the tests of the
// package that holds it, and reports the mutants no test caught.
//
// Operators. Go (go/ast, one mutant per site): == and != swapped; <, <=, >,
// >= moved across their boundary; && and || swapped; a ! removed; true and
// false swapped; the condition of an if whose body returns, continues or
// breaks replaced by false (the guard dropped); strings.EqualFold(a, b)
// replaced by a == b. Rego (the shipped policy, not its tests): == and !=
// swapped; a leading not removed; one condition of a rule body replaced by
// true (the rule widened). Generated files, tests and doc.go are never
// mutated.
//
// Each mutant is applied with `go test -overlay` (embedded .rego files
// included), so the working tree is never written: the harness can run
// beside an editor or another build. A run is `go test -count=1 -failfast
// -timeout T` of the package that holds the mutant (./rego for the policy);
// a test failure or a time-out kills the mutant, a build or policy-compile
// error makes it not viable (left out of the score), a pass is a survivor.
//
// The score of a package is killed / (killed + survived), equivalent
// mutants left out: equivalent.txt lists, one a line, "file:line OPERATOR"
// and the reason no test can tell that mutant from the original. Every
// other survivor is printed.
//
// Cost: each mutant costs a build of the test binary and the package's
// tests, so a full run over every package is long on two shared cores:
// about 2,500 mutants, 3.5 to 4 hours here (MUTATE_BUDGET=0), the Rego
// package's a third of them and most of the time. -list prints the mutants
// and their count without running anything; a run prints its estimate from
// each package's baseline before it starts.
// -budget bounds the wall time: mutants are drawn at random (-seed),
// interleaved across packages, until the budget is spent; what was not run
// is reported as such, and the score covers what ran. -pkgs, -files (a
// regular expression, e.g. '\.rego$' for the policy alone) and -max narrow a
// run to a sample.
//
// Why not gremlins: it installs (v0.5.0 from the module proxy) and runs,
// but mutates Go only — one of the survivors this harness was written for
// lived in the shipped Rego policy — and has no time budget or sampling, so
// a run on two shared cores cannot be bounded.
//
// Imports: the standard library only. Not imported by the product.
package main
