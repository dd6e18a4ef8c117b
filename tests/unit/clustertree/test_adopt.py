from types import SimpleNamespace

import pytest

from kosmos.clustertree.adopt import (
    adopt,
    adoption_patch,
    half_released,
    handshake,
    is_migrated,
    without_images,
)
from kosmos.clustertree.podforge import mutable_patch
from kosmos.kube.errors import Conflict

POLICY = "apps/promote-shop"


def host(member_uid="m-1", policy=POLICY):
    annotations = {}
    if member_uid is not None:
        annotations["kosmos.io/member-pod-uid"] = member_uid
    if policy is not None:
        annotations["kosmos.io/promote-policy"] = policy
    return {
        "metadata": {"name": "web-0", "namespace": "shop", "uid": "h-1", "annotations": annotations}
    }


def member(uid="m-1", policy=POLICY, image="nginx:1.14.2"):
    annotations = {"kosmos.io/promote-policy": policy} if policy is not None else {}
    return {
        "metadata": {
            "name": "web-0",
            "namespace": "shop",
            "uid": uid,
            "resourceVersion": "42",
            "labels": {"app": "web"},
            "annotations": annotations,
        },
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def test_both_sides_of_the_handshake_adopt():
    assert handshake(host(), member())


@pytest.mark.parametrize(
    ("host_pod", "member_pod"),
    [
        pytest.param(host(member_uid="m-2"), member(), id="other-member-uid"),
        pytest.param(host(), member(policy="apps/other"), id="other-policy"),
        pytest.param(host(), member(policy=None), id="member-not-marked"),
        pytest.param(host(member_uid=None), member(), id="host-without-uid"),
        pytest.param(host(policy=None), member(), id="host-without-policy"),
        pytest.param(host(policy=""), member(policy=""), id="both-policies-empty"),
        pytest.param(host(member_uid="", policy=POLICY), member(uid=""), id="empty-uids"),
    ],
)
def test_anything_less_is_a_name_conflict(host_pod, member_pod):
    assert not handshake(host_pod, member_pod)


def test_adoption_is_one_conditional_metadata_patch():
    assert adoption_patch(host(), member()) == {
        "metadata": {
            "resourceVersion": "42",
            "labels": {"kosmos-io/pod": "true"},
            "annotations": {"kosmos.io/host-pod-uid": "h-1"},
        }
    }


def test_released_pod_is_not_adopted():
    assert is_migrated(member())
    assert not is_migrated(member(policy=None))


def test_image_changes_are_kept_out_of_an_adopted_pods_patch():
    live = member()
    desired = member(image="nginx:1.15")
    desired["metadata"]["labels"]["release"] = "v2"
    desired["spec"]["initContainers"] = []
    patch, dropped = without_images(mutable_patch(live, desired))
    assert dropped == ["app=nginx:1.15"]
    assert patch == {"metadata": {"labels": {"release": "v2"}}}


def test_a_patch_of_images_only_becomes_no_patch():
    patch, dropped = without_images(mutable_patch(member(), member(image="nginx:1.15")))
    assert (patch, dropped) == (None, ["app=nginx:1.15"])
    assert without_images(None) == (None, [])


def test_other_spec_changes_stay():
    live = member()
    desired = member()
    desired["spec"]["activeDeadlineSeconds"] = 30
    patch, dropped = without_images(mutable_patch(live, desired))
    assert patch == {"spec": {"activeDeadlineSeconds": 30}} and dropped == []


class FakeTree:
    """The member client's patch and the event recorder; ``fail`` is raised by the patch."""

    def __init__(self, fail=None):
        self.patches, self.events, self.fail = [], [], fail
        self.manager = SimpleNamespace(client=lambda cluster: SimpleNamespace(patch=self.patch))
        self.recorder = SimpleNamespace(record=self.record)

    async def patch(self, resource, name, body, *, namespace):
        if self.fail:
            raise self.fail
        self.patches.append((resource.plural, namespace, name, body))

    async def record(self, obj, type_, reason, message):
        self.events.append((obj["metadata"]["name"], type_, reason))


async def test_adopting_patches_the_member_pod_and_records_it():
    tree = FakeTree()
    assert await adopt(tree, "member1", host(), member())
    assert tree.patches == [("pods", "shop", "web-0", adoption_patch(host(), member()))]
    assert tree.events == [("web-0", "Normal", "Adopted")]


async def test_a_member_pod_changed_meanwhile_is_not_adopted_now():
    tree = FakeTree(fail=Conflict("member1", "the object has been modified"))
    assert not await adopt(tree, "member1", host(), member())
    assert tree.events == []


def test_a_migrated_pod_without_its_host_uid_is_not_a_stale_copy():
    pod = member()
    assert half_released(pod)
    pod["metadata"]["annotations"]["kosmos.io/host-pod-uid"] = "h-1"
    assert not half_released(pod)
    assert not half_released(member(policy=None))
