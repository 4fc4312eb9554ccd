"""The transfer engine: parallel transfers scheduled over streams.

The engine the shell's transfer commands use, a command's batch of
copies, the job board, the stream pool, files shared by several streams
(chunks and their pipelines, early OPENs, checkpoints, a source changing
meanwhile), download and upload jobs and their chunked parts, recursive
walks.

May import: psftp_shell.filecopy, psftp_shell.sftp, psftp_shell.core.
Never rich or prompt_toolkit, never the SSH layer: it works on SFTP
clients and reports to an observer.
"""
