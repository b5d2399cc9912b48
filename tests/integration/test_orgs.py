"""Two organizations never see each other (docs/protocol.md: an event goes
"to every open connection of the user's organization ... and to no other
organization"; each organization numbers its own events)."""

from conftest import token_for


def test_events_of_org_b_never_reach_org_a(srv):
    srv.seed_users(("A", "a1"), ("B", "b1"))
    srv.start()
    a = srv.ws("A", "a1")
    assert {m["user"] for m in a.snapshot["members"]} == {"a1"}, a.snapshot
    b = srv.ws("B", "b1")
    b2 = srv.ws("B", "b2")              # token-provisioned into B
    b.expect_presence("b2", "ONLINE", "connect")
    b.set_manual("BUSY")
    b.expect_presence("b1", "BUSY", "manual")
    b2.set_auto("AWAY")
    b.expect_presence("b2", "AWAY", "idle")
    b2.close()
    b.expect_presence("b2", "OFFLINE", "grace_expired", timeout=4)
    # Nothing of B reached A, and A's seq did not move.
    a.assert_no_message(0.5)
    a.ping()
    body = srv.presence(token_for("A", "a1"))
    assert {m["user"] for m in body["members"]} == {"a1"}, body
    assert body["seq"] == a.last_seq, (body["seq"], a.last_seq)
    # A's snapshot for a new connection excludes B.
    a2 = srv.ws("A", "a2")
    assert "b1" not in {m["user"] for m in a2.snapshot["members"]}
    assert "b2" not in {m["user"] for m in a2.snapshot["members"]}


def test_same_user_id_in_two_orgs_are_different_users(server):
    a = server.ws("A", "u1", name="Ann of A")
    b = server.ws("B", "u1", name="Bob of B")
    b.set_manual("BUSY")
    b.expect_presence("u1", "BUSY", "manual")
    a.assert_no_message(0.5)
    assert server.presence(token_for("A", "u1"))["members"][0]["status"] == "ONLINE"
    ra = server.http("GET", "/api/users/u1", token=token_for("A", "x"))
    rb = server.http("GET", "/api/users/u1", token=token_for("B", "x"))
    assert ra.json()["name"] == "Ann of A" and ra.json()["status"] == "ONLINE"
    assert rb.json()["name"] == "Bob of B" and rb.json()["status"] == "BUSY"


def test_api_user_of_other_org_is_404(srv):
    srv.seed_users(("A", "a1"), ("B", "b1"))
    srv.start()
    tok_a = token_for("A", "a1")
    r = srv.http("GET", "/api/users/b1", token=tok_a)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    r = srv.http("GET", "/api/users/a1", token=tok_a)
    assert r.status_code == 200 and r.json()["user"] == "a1"
    r = srv.http("GET", "/api/users/nobody", token=tok_a)
    assert r.status_code == 404


def test_seq_is_per_organization(server):
    a = server.ws("A", "a1")
    b = server.ws("B", "b1")
    a_seq = a.last_seq
    b_seq = b.last_seq
    for st in ("BUSY", "AWAY", "ONLINE", "BUSY"):
        b.set_manual(st)
        b.expect_presence("b1", st, "manual")
    assert b.last_seq == b_seq + 4
    a.set_manual("BUSY")
    assert a.expect_presence("a1", "BUSY", "manual")["seq"] == a_seq + 1
