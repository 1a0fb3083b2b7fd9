# DAG ids the static reading must not build: each would be megabytes (and, scaled up,
# gigabytes and minutes) of string from a few bytes of source.
from airflow.sdk import DAG

WIDE = "%030000000d" % 1
SPEC = "{:30000000}".format("a")
GROWN = "x".replace("", "abcdefghij").replace("", "abcdefghij").replace("", "abcdefghij")
GROWN = GROWN.replace("", "abcdefghij").replace("", "abcdefghij").replace("", "abcdefghij")
DOUBLED = "abcdefghijklmnopqrstuvwxyz"
for _ in range(1):
    pass
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED
DOUBLED = DOUBLED + DOUBLED

with DAG(dag_id=WIDE):
    pass
with DAG(dag_id=SPEC):
    pass
with DAG(dag_id=GROWN):
    pass
with DAG(dag_id=DOUBLED):
    pass
with DAG(dag_id=f"{DOUBLED}{DOUBLED}"):
    pass
