"""The transfer engine: parallel transfers scheduled over streams.

The engine the shell's transfer commands use, a command's batch of
copies, the job board, the stream pool, files shared by several streams
(chunks and their pipelines), download and upload jobs, recursive walks.

May import: psftp_shell.filecopy, psftp_shell.sftp, psftp_shell.core.
Never rich or prompt_toolkit, never the SSH layer: it works on SFTP
clients and reports to an observer.
"""
