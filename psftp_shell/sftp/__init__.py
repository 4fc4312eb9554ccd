"""Our SFTP version 3 client, over any pair of byte streams.

The wire format, reply parsers, the request/response machinery (with
its send side and the VERSION exchange), the client API, the check-file
extensions, the first questions of a session and whole-directory
reads.  It knows nothing of SSH.

May import: psftp_shell.core.
"""
