"""The psftp-shell command: from argv to an exit status.

sftp's command-line options and destination operand, psftp-shell's own
config file, usage text, signals, the batch loop, the interactive REPL
with completion, and the progress views (rich, prompt_toolkit).

May import: every other package.
"""
