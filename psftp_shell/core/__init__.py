"""Pure leaves that several layers share.

Exceptions and exit statuses, escaping of untrusted text, where messages
are written and in which order, path strings, what the engine reports
(the observer interface), the dependency-warnings filter and the quick
exit (no interpreter teardown) and the C library parsing both OpenSSH
programs rely on.

May import: the standard library only (no other psftp_shell package).
"""
