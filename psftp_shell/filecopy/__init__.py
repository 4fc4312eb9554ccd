"""The copy of one file: what every copy shares, and one whole file on one
stream.

The copy context and switches, byte ranges, resume journals, local and
remote destinations (temporaries), the check that a copy would not go
onto its own source, delivery verification, request pipelines, windows
and the bandwidth limit.

May import: psftp_shell.sftp, psftp_shell.core.  Never rich or
prompt_toolkit; it reports to an observer (psftp_shell.core.observer).
"""
