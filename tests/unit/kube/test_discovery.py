from kosmos.kube.discovery import parse_resources, preferred_versions, served_resources
from tests.unit.migration.fakes import FakeClient, resource_list


async def test_served_resources_reads_the_preferred_versions_and_skips_broken_groups():
    client = FakeClient(
        {
            "/api/v1": resource_list(
                "v1", ("pods", "Pod", True), ("pods/exec", "PodExecOptions", True)
            ),
            "/apis": {
                "groups": [
                    {
                        "name": "apps",
                        "versions": [{"version": "v1"}],
                        "preferredVersion": {"version": "v1"},
                    },
                    {"name": "down.io", "preferredVersion": {"version": "v1"}},
                ]
            },
            "/apis/apps/v1": resource_list("apps/v1", ("deployments", "Deployment", True)),
        }
    )
    served = await served_resources(client)
    assert [s.name for s in served] == ["pods", "deployments.apps"]
    assert served[1].resource.api_version == "apps/v1" and served[1].supports("list", "create")


def test_preferred_version_falls_back_to_the_first_listed():
    groups = {"groups": [{"name": "a.io", "versions": [{"version": "v2"}, {"version": "v1"}]}]}
    assert preferred_versions(groups) == [("a.io", "v2")]
    assert parse_resources("", "v1", {}) == []
