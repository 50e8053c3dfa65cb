"""Refwire's AWS resources on a local moto server, built from template.yaml.

    python infra/moto_stack.py up [--port 5055]     start moto, create the stack, print its
                                                    environment, run until Ctrl-C, then stop moto
    python infra/moto_stack.py check [--port 5077]  start moto, create the stack, verify it, stop

`up` prints the variables the Lambda binaries read (plus AWS_ENDPOINT_URL and dummy credentials),
so `refwire-api`, `refwire-fanout` and `refwire-delivery` can run against it, e.g. under
`cargo lambda watch`. The table, queues (with the redrive policy), schedule group and scheduler role
are read from template.yaml, so they are what a deployment creates. Run it with the Python that
scripts/test.sh installs: `.venv/bin/python infra/moto_stack.py up`.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

import boto3
from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STACK = "refwire"
TABLE_KEYS = ["AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode"]


def resources():
    template, problems = decode(str(ROOT / "template.yaml"))
    if problems:
        sys.exit(f"template.yaml does not parse: {problems}")
    # Plain dicts and lists for boto3; the intrinsic functions this script needs it resolves itself.
    return json.loads(json.dumps(template["Resources"], default=str))


def start_moto(port):
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "infra" / "moto_server.py"), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/")
            return server, endpoint
        except OSError:
            if server.poll() is not None:
                sys.exit(f"moto server exited with {server.returncode}")
            time.sleep(0.1)
    server.kill()
    sys.exit("moto server did not start")


def create_stack(endpoint):
    """Creates what template.yaml declares for data and queues; returns the functions' environment."""
    session = boto3.Session(aws_access_key_id="moto", aws_secret_access_key="moto", region_name=REGION)
    client = lambda service: session.client(service, endpoint_url=endpoint)  # noqa: E731
    declared = resources()

    table = declared["Table"]["Properties"]
    dynamodb = client("dynamodb")
    stream = {"StreamEnabled": True, **table["StreamSpecification"]}
    dynamodb.create_table(TableName=STACK, StreamSpecification=stream, **{key: table[key] for key in TABLE_KEYS})
    dynamodb.update_time_to_live(TableName=STACK, TimeToLiveSpecification=dict(table["TimeToLiveSpecification"]))

    sqs = client("sqs")

    def queue(name, logical_id, extra=None):
        properties = declared[logical_id]["Properties"]
        attributes = {"MessageRetentionPeriod": str(properties["MessageRetentionPeriod"])}
        if "VisibilityTimeout" in properties:
            attributes["VisibilityTimeout"] = str(properties["VisibilityTimeout"])
        attributes.update(extra or {})
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    _, dead_letter_arn = queue(f"{STACK}-deliveries-dlq", "DeliveriesDeadLetterQueue")
    redrive = declared["DeliveriesQueue"]["Properties"]["RedrivePolicy"]
    queue_url, queue_arn = queue(
        f"{STACK}-deliveries",
        "DeliveriesQueue",
        {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": redrive["maxReceiveCount"]})},
    )
    queue(f"{STACK}-fanout-failures", "FanoutFailuresQueue")

    group = f"{STACK}-retries"
    client("scheduler").create_schedule_group(Name=group)
    role = declared["SchedulerRole"]["Properties"]
    role_arn = client("iam").create_role(
        RoleName=f"{STACK}-scheduler",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]}),
        Description=role["Policies"][0]["PolicyName"],
    )["Role"]["Arn"]
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "moto",
        "AWS_SECRET_ACCESS_KEY": "moto",
        "REFWIRE_TABLE": STACK,
        "REFWIRE_QUEUE_URL": queue_url,
        "REFWIRE_QUEUE_ARN": queue_arn,
        "REFWIRE_SCHEDULE_GROUP": group,
        "REFWIRE_SCHEDULER_ROLE_ARN": role_arn,
    }


def check(endpoint, environment):
    """The stack is what the template says: indexes, stream, TTL, redrive."""
    session = boto3.Session(aws_access_key_id="moto", aws_secret_access_key="moto", region_name=REGION)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    table = dynamodb.describe_table(TableName=STACK)["Table"]
    indexes = sorted(index["IndexName"] for index in table["GlobalSecondaryIndexes"])
    assert indexes == ["gsi1", "gsi2", "gsi3"], indexes
    local_indexes = [index["IndexName"] for index in table["LocalSecondaryIndexes"]]
    assert local_indexes == ["lsi1"], local_indexes
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}, table
    ttl = dynamodb.describe_time_to_live(TableName=STACK)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl" and ttl["TimeToLiveStatus"] == "ENABLED", ttl
    sqs = session.client("sqs", endpoint_url=endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=environment["REFWIRE_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5, attributes
    assert attributes["VisibilityTimeout"] == "360", attributes
    print("moto stack: table (3 GSIs, 1 LSI, NEW_IMAGE stream, TTL), queues with redrive, schedule group, role: ok")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "check"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    port = args.port or (5055 if args.command == "up" else 5077)
    server, endpoint = start_moto(port)
    try:
        environment = create_stack(endpoint)
        if args.command == "check":
            check(endpoint, environment)
            return
        for name, value in environment.items():
            print(f"export {name}={value}")
        print("# moto is running; Ctrl-C stops it", file=sys.stderr)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
