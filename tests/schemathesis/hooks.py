"""Keeps schemathesis from sawing off the branch it sits on.

The run authenticates with one API key of the instance admin. Some valid requests would end
that credential (revoking, rolling, disabling or restricting its own key; removing its owner
from the key's workspace; making that workspace demand a key + token pair), and every later
request would be a 401: the rest of the run would test nothing. One would shrink it: taking its
owner's instance role away (refused while it is the last instance admin, allowed once the run
has made another), after which most operations answer 403 or 404. Such requests are sent with
the protected id swapped for a well-formed id that cannot exist (a 1970 timestamp), so they
still exercise validation, routing and the 404 path, and the credential survives.

The ids come from run.sh (LATCHKEY_ST_KEY_ID, LATCHKEY_ST_USER_ID, LATCHKEY_ST_WORKSPACE_ID).
"""

import os

import schemathesis

KEY_ID = os.environ["LATCHKEY_ST_KEY_ID"]
USER_ID = os.environ["LATCHKEY_ST_USER_ID"]
WORKSPACE_ID = os.environ["LATCHKEY_ST_WORKSPACE_ID"]

READ_ONLY = {"GET", "HEAD", "OPTIONS"}


def absent(prefix: str) -> str:
    return prefix + "_" + "0" * 20


@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.method.upper() in READ_ONLY or not case.path_parameters:
        return
    params = case.path_parameters
    path = case.path
    # PATCH, DELETE and roll of the run's own key.
    if path.startswith("/v1/keys/{id}") and params.get("id") == KEY_ID:
        params["id"] = absent("key")
    # Changing or ending its owner's membership of the key's workspace.
    if (
        path == "/v1/workspaces/{id}/members/{user_id}"
        and params.get("id") == WORKSPACE_ID
        and params.get("user_id") == USER_ID
    ):
        params["user_id"] = absent("usr")
    # Demoting its owner from instance admin (`instance_role` other than "admin").
    if (
        path == "/v1/users/{id}"
        and case.method.upper() == "PATCH"
        and params.get("id") == USER_ID
        and isinstance(case.body, dict)
        and "instance_role" in case.body
        and case.body["instance_role"] != "admin"
    ):
        params["id"] = absent("usr")
    # `require_pair: true` on the key's workspace refuses the run's lone key with 401.
    if path == "/v1/workspaces/{id}" and params.get("id") == WORKSPACE_ID:
        body = case.body if isinstance(case.body, dict) else {}
        if body.get("require_pair"):
            params["id"] = absent("ws")
