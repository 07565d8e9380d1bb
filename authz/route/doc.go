// Package route classifies a request against Azure Key Vault's data-plane
// REST table (keyvault-spec §6, §8): method + path (+ X-HTTP-METHOD, + the
// api-version query parameter) → authz.Operation, or a refusal. It owns the
// table (Table lists every row, for docs and test generators) and the rules
// of what a canonical request target is. It implements authz.Classifier.
//
// Imports: authz and the standard library.
//
// # Matching
//
//   - Literal segments are matched case-insensitively (wrapkey, wrapKey,
//     WRAPKEY). Object names are case-insensitive in Key Vault
//     (/secrets/PROD-ROOT is the secret prod-root): Object and Scope are
//     lower case, the one spelling every rule compares; ObjectRaw keeps the
//     name as sent.
//   - Literals beat placeholders. When the literal's subtree has no route for
//     the method, the placeholder reading is tried: PUT /secrets/restore sets
//     a secret named "restore".
//   - A version is 32 hex characters or empty: a trailing slash
//     (GET /secrets/{n}/) or a double slash (POST /keys/{n}//sign) gives
//     Version "". No other segment may be empty. Upper-case hex is accepted:
//     Key Vault compares identifiers case-insensitively, and no permission
//     depends on a version's spelling.
//   - Key operations also match version-less (POST /keys/{n}/wrapkey, also
//     release and attestation): the Azure SDK for Go joins paths with
//     path.Join, which drops the empty version segment.
//   - Names: ^[0-9a-zA-Z-]{1,127}$; storage accounts and SAS definitions
//     ^[0-9a-zA-Z]{1,127}$ (the spec gives no length; 127 bounds it).
//   - POST with X-HTTP-METHOD: PATCH or DELETE (exact, upper case) is
//     classified as that method, unless the plain POST is itself an
//     operation (POST /secrets/restore + DELETE): an upstream that ignores
//     the header would run the POST, so that pair is refused.
//
// # Decisions where the spec is silent
//
//   - Audit names the spec does not give: KeyRelease, KeyAttestationGet,
//     HealthStatus, StorageAccount{List,Get,Set,Update,Delete,
//     RegenerateKey,Backup,Restore,ListDeleted,GetDeleted,Purge,Recover},
//     StorageSasDefinition{List,ListDeleted,Get,GetDeleted,Set,Update,
//     Delete,Recover}.
//   - Scope is "/secrets|keys|certificates/<name>" for operations on one live
//     object (and its versions, backup, policy, pending); "" for deleted
//     objects (a stricter reading: only vault-level role assignments grant
//     purge and recover), collections, restore, contacts, issuers, storage.
//   - Object is the secret, key, certificate, issuer or storage account name;
//     for SAS definition operations it is the storage account (the SAS
//     definition name stays in the path; no permission depends on it).
//   - GET /deletedstorage/{a}/sas/{s} is included as getsas (the spec's
//     "…/sas/{s}" covers both collections).
//   - A case variant of a literal that could also be an object name
//     ("GET /certificates/Contacts") is refused when both readings are
//     operations: a case-sensitive upstream would read it as a certificate.
//   - GET /healthstatus is Anonymous with no Resource, Permission or
//     DataAction.
//
// # Refusals
//
// Every refusal is a Key Vault–style *authz.Denial. Code is error.code;
// Inner is error.innererror.code, which x-ms-error-code carries. The
// pipeline answers it only to an authenticated caller: without a valid
// token the request gets the 401 first, as from Key Vault.
//
//	400 BadParameter / InvalidRequestUri — not the canonical form:
//	    "The request path must start with '/'."
//	    "The request path is longer than 2048 bytes." (query: 4096)
//	    "The request URI contains a control, space or non-ASCII byte (0x..) at offset N."
//	    "The request URI contains a fragment ('#')."
//	    "The request path contains a percent-encoded character; …"
//	    "The request path contains a backslash." / "… a ';' path parameter."
//	    "The request path contains a dot segment ('..')."
//	    "The request URI '…' has an empty path segment where none is allowed: …"
//	    "The request query contains ';', …" / "… has an invalid percent-encoding."
//	    "The request query has more than one api-version parameter."
//	    "The api-version \"…\" is not valid: …"
//	400 BadParameter / InvalidName — a name or version that breaks its rule:
//	    "The request URI contains an invalid name: my_secret. A secret name is 1 to 127 letters, digits and '-'."
//	    "The request URI '…' contains 'x', which is neither one of versions, create, … nor a valid key version (32 hexadecimal characters)."
//	400 BadParameter / UnknownOperation — not in the table:
//	    "The request GET /foo is not a Key Vault data-plane operation."
//	400 BadParameter / AmbiguousRequestUri — two readings, refused:
//	    "The request URI is ambiguous: 'Contacts' in '…' reads both as the reserved segment 'contacts' and as an object name. …"
//	    "X-HTTP-METHOD: DELETE cannot be used on 'POST /secrets/restore': that request is itself the operation SecretRestore."
//	400 BadParameter / InvalidMethodOverride — X-HTTP-METHOD misuse:
//	    "The X-HTTP-METHOD header is only allowed on POST requests, not on GET."
//	    "The X-HTTP-METHOD header value \"PUT\" is not supported: it must be PATCH or DELETE."
//	    "The x-http-method-override header is not supported: …" (also x-method-override)
//	405 MethodNotAllowed — the path is an operation, the method is not:
//	    "The method PUT is not allowed on '/keys/k/versions'. Allowed: GET."
//
// Messages echo the method and the path (never the query), and only after
// the path has been checked to be printable ASCII of bounded length.
package route
