"""sftp's commands, as OpenSSH's sftp.c has them.

The one command table (dispatch, help, completion, man page), parsing
and running a command line, the command-line grammar, glob(3) (its
pattern language and its walk), the remote session and its cwd, the
text of ls, and the handlers of local, remote and transfer commands.

May import: psftp_shell.engine and everything below it except the SSH
layer.  Never rich or prompt_toolkit.
"""
