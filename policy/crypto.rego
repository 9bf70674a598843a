# sostle suite — nothing to define: the witness hash uses OPA's built-in crypto.sha256 (conftest
# has it). sostle's own regorus engine, which lacks it, registers crypto.sha256 as an extension.
package main
