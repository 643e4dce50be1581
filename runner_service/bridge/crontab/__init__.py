"""The crontab bridge's library: parse crontabs as Debian's cron does, edit single lines
byte-exactly (observe, takeover, revert, sync back), read and write them safely."""

from .edit import diff, entry_line, replace_line, restored_line, shell_quote, taken_line, unwrapped_line, wrapped_line
from .files import Conflict, CrontabError, Source, read, source_for, write
from .syntax import MARKER, Crontab, Entry, LineError, Taken, as_cron_runs_it, cron_command, cron_stdin, parse

__all__ = ['MARKER', 'Conflict', 'Crontab', 'CrontabError', 'Entry', 'LineError', 'Source', 'Taken',
           'as_cron_runs_it', 'cron_command', 'cron_stdin', 'diff', 'entry_line', 'parse', 'read', 'replace_line',
           'restored_line', 'shell_quote', 'source_for', 'taken_line', 'unwrapped_line', 'wrapped_line',
           'write']
