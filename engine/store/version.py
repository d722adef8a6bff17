"""The schema version this nextmove writes, in a module of its own: the read-only way in
(`engine.store.plain`) checks it without loading the SQLModel tables."""

SCHEMA_VERSION = 8  # 2: policy_activation.policy_hash and chain, policy_trail_head;
# 3: step_event.visit_ms and paired, instance.visits (see engine.store.visits);
# 4: message_receipt.status, expires_at, settled_at; ids unique per (prospect, message);
# 5: signoff (reviewers' sign-offs of audit findings, hash-chained);
# 6: catalog no longer unique per (name, content_hash): an older text may be stored again
# 7: retirement (processes retired by a designer: no new instances, hooks no longer bound)
# 8: instance.card_due_at (cards paged most urgent first, stuck steps included)
