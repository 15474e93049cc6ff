"""moto's server, brought to three rules of the services it stands in for, where moto is kinder or looser.

- S3 puts the object's version id in the event of a versioning-enabled bucket ("versionId": "object
  version if bucket is versioning-enabled, otherwise null",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html;
  docs/AWS_CONTRACTS.md S4). moto 5.2 leaves it out, so ingest filed a local upload under an ETag-based
  id (and staged whatever version was newest) while its uploader followed the version S3 had created.
- EMR refuses a step whose HadoopJarStep strings total more than 10,240 characters ("The string values
  passed into HadoopJarStep object cannot exceed a total of 10240 characters",
  https://docs.aws.amazon.com/emr/latest/APIReference/API_AddJobFlowSteps.html; AWS_CONTRACTS E10).
  moto takes any step; here AddJobFlowSteps and RunJobFlow answer ValidationException, as EMR does.
- DynamoDB applies each PutItem, UpdateItem and DeleteItem atomically: "All these operations are atomic"
  (https://docs.amazonaws.cn/en_us/amazondynamodb/latest/developerguide/WorkingWithItems.md), "Individual
  write operations such as UpdateItem are atomic and always operate on the most recent version of the item,
  regardless of concurrency" (https://docs.aws.amazon.com/en_us/amazondynamodb/latest/developerguide/BestPractices_ImplementingVersionControl.html;
  docs/AWS_CONTRACTS.md D5). moto's threaded server reads the item, checks the condition and writes in
  separate steps with no lock, so two concurrent conditional writes could both see the old item and both
  succeed: two invocations took one view's run lock (G10). Here DynamoDB requests run one at a time.

Every local moto (scripts/moto.sh, local/engines.ts) runs through this file; it takes moto_server's
arguments.
"""

import sys
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.emr import models as emr_models
from moto.emr.exceptions import ValidationException
from moto.s3 import notifications
from moto.server import main

EMR_STEP_MAX_CHARACTERS = 10_240

_moto_s3_event = notifications._get_s3_event  # noqa: SLF001 - the one place moto builds the event


def _s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    event = _moto_s3_event(event_name, bucket, key, notification_id)
    if bucket.is_versioned:
        for record in event["Records"]:
            record["s3"]["object"]["versionId"] = key.version_id
    return event


notifications._get_s3_event = _s3_event  # noqa: SLF001 - send_event looks it up at each call


def _step_characters(step: dict[str, Any]) -> int:
    jar_step = step.get("hadoop_jar_step") or {}
    strings = [jar_step.get("Jar"), jar_step.get("MainClass"), *(jar_step.get("Args") or [])]
    for prop in jar_step.get("Properties") or []:
        strings += [prop.get("Key"), prop.get("Value")]
    return sum(len(s) for s in strings if s)


_moto_add_steps = emr_models.Cluster.add_steps


def _add_steps(cluster: Any, steps: list[dict[str, Any]]) -> Any:
    # Both AddJobFlowSteps and RunJobFlow's steps come through here; nothing is added if one is too long.
    for step in steps:
        characters = _step_characters(step)
        if characters > EMR_STEP_MAX_CHARACTERS:
            raise ValidationException(
                f"The string values passed into HadoopJarStep object cannot exceed a total of "
                f"{EMR_STEP_MAX_CHARACTERS} characters (step {step.get('name', '')!r} has {characters})"
            )
    return _moto_add_steps(cluster, steps)


emr_models.Cluster.add_steps = _add_steps

# One lock for every DynamoDB request (parsing, the condition, the write and the response): a request
# sees the table as the last one left it, and no other request sees an item half-written.
_dynamodb_requests = threading.Lock()
_moto_dynamodb_call_action = DynamoHandler.call_action


def _dynamodb_call_action(handler: DynamoHandler) -> Any:
    with _dynamodb_requests:
        return _moto_dynamodb_call_action(handler)


DynamoHandler.call_action = _dynamodb_call_action

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
