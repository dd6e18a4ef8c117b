from kosmos.scheduler.admission import PATCH, POLICY_NAME, SCHEDULED_BY_KOSMOS, toleration_policy


def test_policy_matches_kosmos_scheduler_pods_at_creation():
    policy, binding = toleration_policy({"a": "b"})
    spec = policy["spec"]
    assert spec["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE"]
    assert spec["matchConditions"] == [
        {"name": "scheduled-by-kosmos", "expression": SCHEDULED_BY_KOSMOS}
    ]
    assert "'kosmos-scheduler'" in SCHEDULED_BY_KOSMOS
    assert spec["mutations"][0]["jsonPatch"]["expression"] == PATCH
    assert binding["spec"]["policyName"] == POLICY_NAME == policy["metadata"]["name"]
    assert policy["metadata"]["labels"] == {"a": "b"}


def test_patch_never_replaces_the_whole_list():
    # a list value of constructed objects crashes the 1.36 apiserver's CEL conversion
    assert "'replace'" not in PATCH
    assert "path: '/spec/tolerations/-'" in PATCH
