# sostle suite — crypto. The witness hash uses OPA's built-in crypto.sha256 (conftest has it;
# sostle's own regorus engine, which lacks it, registers crypto.sha256 as an extension).
#
# An approval (SPEC §6) is an ECDSA P-256 signature over the witness bytes. OPA has no builtin
# that verifies one over arbitrary bytes, so under conftest an approval is never proven: there,
# exemptions are honoured only with `exemptions.requireApproval: false` in the config. sostle's
# own engine replaces this function with one that verifies (the same decision as the native
# engine).
package main

import rego.v1

approval_verified(_, _, _) := false

# Kay's approval (L5) is an ECDSA signature too: never proven under conftest.
kay_approval_verified(_, _, _, _) := false
