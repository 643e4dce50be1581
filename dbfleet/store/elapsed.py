"""`elapsed_seconds(start, end)`: the seconds between two datetime columns, as SQL, on every
backend the store runs on, so figures such as a duration histogram are summed in the database
instead of every row being read out. SQLite keeps datetimes as text (julianday reads it, to about
10 microseconds); MySQL and MariaDB count microseconds with TIMESTAMPDIFF."""

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
    return '((julianday(%s) - julianday(%s)) * 86400.0)' % (compiler.process(end, **kw),
                                                          compiler.process(start, **kw))


@compiles(elapsed_seconds, 'mysql')
@compiles(elapsed_seconds, 'mariadb')
def _mysql(element, compiler, **kw):
    start, end = list(element.clauses)
    return '(TIMESTAMPDIFF(MICROSECOND, %s, %s) / 1000000.0)' % (compiler.process(start, **kw),
                                                                compiler.process(end, **kw))
