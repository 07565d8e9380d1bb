# A deliberately bad operator policy: every rule below draws a lint finding
# (TestLintFindings). It loads: the type checker cannot see these.
package vaultwall.operator

deny contains "no secret reads" if {
	input.operation.resource == "secret"
}

deny contains "no prod-root" if {
	input.operation.object == "PROD-ROOT"
}

deny contains "no prod-root, any spelling" if {
	input.operation.object_raw == "prod-root"
}

deny contains "no curl" if {
	input.request.headers.authorization == "x"
}

deny contains "debugging" if {
	print(input.operation.name)
	input.operation.plane in {"dataplane", "controlplane"}
}

deny contains "always" if {
	1 == 1
	input.caller.groups[_] != "ops"
}

isAdmin if input.caller.object_id == "x"

grant contains "x" if {
  isAdmin
}

# regal ignore:raw-name-compared
deny contains "silenced" if startswith(input.request.path, "/secrets/x")

upper := "a rule named as a built-in"
