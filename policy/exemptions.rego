# sostle suite — exemptions (SPEC §6) without a ledger: all seven annotations, the policy listed,
# applies-to this resource, expiry in the future and at most maxDays ahead, a TRB-CHAOS reason,
# registered owner, an approver of the layer as reviewer (not the owner, except at L0), the
# witness hash, the signed approval (see crypto.rego), and the matrix. Rules that need the ledger (L4's open trial) are refused here.
package main

import rego.v1

ex(k) := trim_space(annotation(concat("", ["sostle.eose.ca/exempt-", k])))

ex_keys := ["from", "applies-to", "reason", "expires", "owner", "reviewed", "witness"]

ex_complete if {
	every k in ex_keys {
		ex(k) != ""
	}
}

ex_policies := {trim_space(p) | some p in split(ex("from"), ","); trim_space(p) != ""}

ex_target := sprintf("%s/%s", [object.get(meta, "namespace", "default"), name])

witness_text := concat("", [
	"sostle-exemption/v1\n",
	"applies-to=", ex("applies-to"), "\n",
	"exempt-from=", ex("from"), "\n",
	"expires=", ex("expires"), "\n",
	"owner=", ex("owner"), "\n",
	"reason=", ex("reason"), "\n",
	"reviewed=", ex("reviewed"), "\n",
])

ex_expires_ns := time.parse_rfc3339_ns(ex("expires"))

ex_in_time if {
	ex_expires_ns > now_ns
	ex_expires_ns - now_ns <= cfg.max_days * 86400000000000
}

ex_owner := crew_member(ex("owner"))

ex_reviewer := crew_member(ex("reviewed"))

approvers := cfg.layers[layer].approvers

ex_reviewer_ok if "self" in approvers

ex_reviewer_ok if {
	not "self" in approvers
	some role in approvers
	role in ex_reviewer.roles
	ex_reviewer.name != ex_owner.name
}

matrix_ok(p) if {
	some rule in cfg.policies[p].exempt
	layer in rule.layers
	rule.condition == null
}

matrix_ok(p) if {
	some rule in cfg.policies[p].exempt
	layer in rule.layers
	role := rule.condition.reviewed_by
	role in ex_reviewer.roles
}

honoured(p) if {
	p != "layer_gate"
	ex_complete
	p in ex_policies
	ex_target == ex("applies-to")
	ex_in_time
	regex.match(`^TRB-CHAOS-[0-9]{3,}([^A-Za-z0-9_]|$)`, ex("reason"))
	ex_owner
	ex_reviewer
	ex_reviewer_ok
	ex("witness") == concat("", ["sha256:", crypto.sha256(witness_text)])
	ex_approved
	matrix_ok(p)
}

# The approval: a signature over the witness by a key of the reviewer (where the layer allows
# self-review, the owner's keys count too), unless the config turns approvals off.
default ex_self_keys := []

ex_self_keys := ex_owner.keys if "self" in approvers

ex_approved if cfg.require_approval == false

ex_approved if {
	cfg.require_approval
	approval_verified(array.concat(ex_reviewer.keys, ex_self_keys), ex("witness"), ex("approval"))
}
