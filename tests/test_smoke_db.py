from decimal import Decimal


def test_template_database_has_seed_data(conn):
    assert conn.execute("SELECT count(*) FROM teams WHERE sport = 'nfl'").fetchone()[0] == 32
    mean = conn.execute("SELECT avg(current_elo_rating) FROM teams").fetchone()[0]
    assert mean == Decimal("1503.125")
    names = {r[0] for r in conn.execute("SELECT template_name FROM method_templates")}
    assert names == {"conservative", "moderate", "aggressive"}
