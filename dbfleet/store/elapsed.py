"""`elapsed_seconds(start, end)`: the seconds between two datetime columns, as SQL, on every
backend the store runs on, so figures such as a duration histogram are summed in the database
instead of every row being read out. Both are exact to the microsecond: SQLite keeps datetimes as
text 'YYYY-MM-DD HH:MM:SS.ffffff', and its date functions round that to the millisecond (two jobs'
run times summed by julianday were 1.2 ms off), so the whole seconds (the first 19 characters) and
the fraction (the rest) are taken apart; MySQL and MariaDB count microseconds with TIMESTAMPDIFF,
divided as a double (a decimal division keeps only div_precision_increment, 4, more digits)."""

from __future__ import annotations

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class elapsed_seconds(FunctionElement):
    type = Float()
    inherit_cache = True
    name = 'elapsed_seconds'


@compiles(elapsed_seconds, 'sqlite')
def _sqlite(element, compiler, **kw):
    start, end = list(element.clauses)
    start, end = compiler.process(start, **kw), compiler.process(end, **kw)
    return ("((strftime('%%s', substr(%(end)s, 1, 19)) - strftime('%%s', substr(%(start)s, 1, 19)))"
            " + (CAST(substr(%(end)s, 20) AS REAL) - CAST(substr(%(start)s, 20) AS REAL)))"
            % {'start': start, 'end': end})


@compiles(elapsed_seconds, 'mysql')
@compiles(elapsed_seconds, 'mariadb')
def _mysql(element, compiler, **kw):
    start, end = list(element.clauses)
    return '(TIMESTAMPDIFF(MICROSECOND, %s, %s) / 1e6)' % (compiler.process(start, **kw),
                                                                compiler.process(end, **kw))
