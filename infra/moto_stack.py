"""Refwire's AWS resources on a local moto server, built from template.yaml.

    python infra/moto_stack.py up [--port 5055]     start moto, create the stack, print its
                                                    environment, run until Ctrl-C, then stop moto
    python infra/moto_stack.py check [--port 5077]  start moto, create two stacks side by side (no
                                                    resource name in common), verify them, stop

`up` prints the variables the Lambda binaries read (plus AWS_ENDPOINT_URL and dummy credentials),
so `refwire-api`, `refwire-fanout` and `refwire-delivery` can run against it, e.g. under
`cargo lambda watch`. The table, queues (with the redrive policy), schedule groups and schedule,
roles, log groups, alarm topic and alarms are read from template.yaml, under the names a stack gives
them, so they are what a deployment creates. Run it with the Python that
scripts/test.sh installs: `.venv/bin/python infra/moto_stack.py up`.
"""

import argparse
import hashlib
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
# `check` builds two stacks side by side, as two deployments in one account and region would be.
CHECK_STACKS = ["refwire", "refwire-staging"]
TABLE_KEYS = ["AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode"]
# The property that names each kind of resource; without it CloudFormation makes a unique name.
NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Serverless::HttpApi": "Name",
}


def resources():
    template, problems = decode(str(ROOT / "template.yaml"))
    if problems:
        sys.exit(f"template.yaml does not parse: {problems}")
    # Plain dicts and lists for boto3; the intrinsic functions this script needs it resolves itself.
    return json.loads(json.dumps(template["Resources"], default=str))


def resolve_name(stack, logical_id, declared):
    """The name a stack called `stack` gives this resource: the template's own, which must contain
    the stack name (a fixed name collides with a second stack in the same account and region), or,
    when the template gives none, one made the way CloudFormation makes them."""
    if declared is None:
        suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:12].upper()
        return f"{stack}-{logical_id}"[:50] + f"-{suffix}"
    if not (isinstance(declared, dict) and isinstance(declared.get("Fn::Sub"), str)):
        raise AssertionError(f"{logical_id}: fixed name {declared!r}; it would collide between stacks")
    text = declared["Fn::Sub"]
    if "${AWS::StackName}" not in text:
        raise AssertionError(f"{logical_id}: name {text!r} does not contain the stack name")
    resolved = text.replace("${AWS::StackName}", stack)
    if "${" in resolved:
        raise AssertionError(f"{logical_id}: name {text!r} needs more than the stack name")
    return resolved


def names(stack, declared):
    """Every resource name the template leads to in one stack: {logical id: name}, including the
    schedules SAM makes from functions' schedule events."""
    result = {}
    for logical_id, resource in declared.items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind in NAME_PROPERTIES:
            result[logical_id] = resolve_name(stack, logical_id, properties.get(NAME_PROPERTIES[kind]))
        if kind == "AWS::Serverless::Function":
            for event_id, event in properties.get("Events", {}).items():
                if event["Type"] not in ("Schedule", "ScheduleV2"):
                    continue
                event_properties = event.get("Properties", {})
                # SAM names a ScheduleV2 schedule after the event unless told OmitName (Schedule:
                # an EventBridge rule, which CloudFormation names unless given Name).
                name = event_properties.get("Name")
                if name is None and event["Type"] == "ScheduleV2" and not event_properties.get("OmitName"):
                    name = logical_id + event_id
                result[logical_id + event_id] = resolve_name(stack, logical_id + event_id, name)
    return result


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


def clients(endpoint):
    session = boto3.Session(aws_access_key_id="moto", aws_secret_access_key="moto", region_name=REGION)
    return lambda service: session.client(service, endpoint_url=endpoint)  # noqa: E731


def create_stack(endpoint, stack=STACK):
    """Creates what template.yaml declares for data, queues, logs and alarms, under the names a stack
    called `stack` gives them; returns the functions' environment. Every create fails on moto if
    the name is taken, as on AWS."""
    client = clients(endpoint)
    declared = resources()
    named = names(stack, declared)

    table = declared["Table"]["Properties"]
    dynamodb = client("dynamodb")
    stream = {"StreamEnabled": True, **table["StreamSpecification"]}
    table_name = named["Table"]
    dynamodb.create_table(TableName=table_name, StreamSpecification=stream, **{key: table[key] for key in TABLE_KEYS})
    dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=dict(table["TimeToLiveSpecification"]))

    sqs = client("sqs")

    def queue(logical_id, extra=None):
        properties = declared[logical_id]["Properties"]
        attributes = {"MessageRetentionPeriod": str(properties["MessageRetentionPeriod"])}
        if "VisibilityTimeout" in properties:
            attributes["VisibilityTimeout"] = str(properties["VisibilityTimeout"])
        attributes.update(extra or {})
        # SQS answers an existing name with the same attributes by returning that queue, so a
        # collision would pass silently: refuse a name in use.
        if sqs.list_queues(QueueNamePrefix=named[logical_id]).get("QueueUrls"):
            raise AssertionError(f"queue {named[logical_id]} exists already")
        url = sqs.create_queue(QueueName=named[logical_id], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    dead_letter_url, dead_letter_arn = queue("DeliveriesDeadLetterQueue")
    redrive = declared["DeliveriesQueue"]["Properties"]["RedrivePolicy"]
    queue_url, queue_arn = queue(
        "DeliveriesQueue",
        {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": redrive["maxReceiveCount"]})},
    )
    failures_url, _ = queue("FanoutFailuresQueue")

    group = named["RetrySchedules"]
    scheduler = client("scheduler")
    scheduler.create_schedule_group(Name=group)
    iam = client("iam")
    roles = {}
    for logical_id, resource in declared.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        role = resource["Properties"]
        roles[logical_id] = iam.create_role(
            RoleName=named[logical_id][:64],
            AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
            Description=", ".join(policy["PolicyName"] for policy in role.get("Policies", [])),
        )["Role"]["Arn"]

    logs = client("logs")
    for logical_id, resource in declared.items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            logs.create_log_group(logGroupName=named[logical_id])
            logs.put_retention_policy(logGroupName=named[logical_id], retentionInDays=30)

    topic_arn = client("sns").create_topic(Name=named["AlarmTopic"])["TopicArn"]
    cloudwatch = client("cloudwatch")
    for logical_id, resource in declared.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resource["Properties"]
        assert alarm.get("AlarmActions") == [{"Ref": "AlarmTopic"}], f"{logical_id} notifies no one"
        cloudwatch.put_metric_alarm(
            AlarmName=named[logical_id],
            AlarmActions=[topic_arn],
            OKActions=[topic_arn],
            Namespace=alarm["Namespace"],
            MetricName=alarm["MetricName"],
            Statistic=alarm["Statistic"],
            Period=alarm["Period"],
            EvaluationPeriods=alarm["EvaluationPeriods"],
            Threshold=alarm["Threshold"],
            ComparisonOperator=alarm["ComparisonOperator"],
            TreatMissingData=alarm["TreatMissingData"],
        )

    # The sweep's schedule, in the default group, as SAM makes it from the function's event.
    sweep = f"arn:aws:lambda:{REGION}:123456789012:function:{named['SweepFunction']}"
    scheduler.create_schedule(
        Name=named["SweepFunctionEveryMinute"],
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": sweep, "RoleArn": roles["SchedulerRole"]},
    )
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "moto",
        "AWS_SECRET_ACCESS_KEY": "moto",
        "REFWIRE_TABLE": table_name,
        "REFWIRE_QUEUE_URL": queue_url,
        "REFWIRE_QUEUE_ARN": queue_arn,
        "REFWIRE_SCHEDULE_GROUP": group,
        "REFWIRE_SCHEDULER_ROLE_ARN": roles["SchedulerRole"],
        # Not read by the functions: for infra/redrive.py and the checks.
        "REFWIRE_DEAD_LETTER_QUEUE_URL": dead_letter_url,
        "REFWIRE_FANOUT_FAILURES_QUEUE_URL": failures_url,
    }


def check(endpoint, environment):
    """The stack is what the template says: indexes, stream, TTL, redrive."""
    client = clients(endpoint)
    dynamodb = client("dynamodb")
    table_name = environment["REFWIRE_TABLE"]
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    indexes = sorted(index["IndexName"] for index in table["GlobalSecondaryIndexes"])
    assert indexes == ["gsi1", "gsi2", "gsi3", "gsi4"], indexes
    local_indexes = [index["IndexName"] for index in table["LocalSecondaryIndexes"]]
    assert local_indexes == ["lsi1"], local_indexes
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}, table
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl" and ttl["TimeToLiveStatus"] == "ENABLED", ttl
    sqs = client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=environment["REFWIRE_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5, attributes
    assert attributes["VisibilityTimeout"] == "360", attributes


def check_samconfig_example():
    """infra/samconfig.example.toml sets only template parameters, each to its default."""
    import tomllib

    template, _ = decode(str(ROOT / "template.yaml"))
    parameters = template["Parameters"]
    config = tomllib.loads((ROOT / "infra" / "samconfig.example.toml").read_text())
    overrides = config["default"]["global"]["parameters"]["parameter_overrides"]
    for item in overrides:
        key, value = item.split("=", 1)
        assert key in parameters, f"samconfig.example.toml: {key} is not a template parameter"
        assert str(parameters[key].get("Default")) == value, f"samconfig.example.toml: {key}={value} is not the default"


def check_side_by_side(endpoint):
    """Two stacks of the template in one account and region: no name in common, and both create."""
    declared = resources()
    first, second = (names(stack, declared) for stack in CHECK_STACKS)
    shared = sorted(set(first.values()) & set(second.values()))
    assert not shared, f"names both stacks would use: {shared}"
    environments = [create_stack(endpoint, stack) for stack in CHECK_STACKS]
    for environment in environments:
        check(endpoint, environment)
    client = clients(endpoint)
    alarms = client("cloudwatch").describe_alarms()["MetricAlarms"]
    expected = sum(resource["Type"] == "AWS::CloudWatch::Alarm" for resource in declared.values())
    assert len(alarms) == 2 * expected, len(alarms)
    assert all(alarm["AlarmActions"] for alarm in alarms), alarms
    print(
        f"moto stacks {' and '.join(CHECK_STACKS)} side by side ({len(first)} named resources each, none shared): "
        f"table (3 GSIs, 1 LSI, NEW_IMAGE stream, TTL), queues with redrive, schedule group, sweep schedule, "
        f"roles, log groups, alarm topic and {expected} alarms each: ok"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "check"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    port = args.port or (5055 if args.command == "up" else 5077)
    server, endpoint = start_moto(port)
    try:
        if args.command == "check":
            check_samconfig_example()
            check_side_by_side(endpoint)
            return
        environment = create_stack(endpoint)
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
