from kosmos.cli.output import table


def test_table_aligns_columns_and_uppercases_headers():
    text = table(["name", "ready"], [["host", "yes"], ["cluster1", "NO"]])
    assert text.splitlines() == [
        "NAME       READY",
        "host       yes",
        "cluster1   NO",
    ]
