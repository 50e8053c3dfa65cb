"""Send Refwire's failed work back through the pipeline, after its cause is fixed.

    python infra/redrive.py dead-letters --stack refwire [--rate 10] [--copy]
    python infra/redrive.py fanout-failures --stack refwire [--dry-run]

dead-letters: the deliveries dead-letter queue holds delivery jobs that failed five receives (the
DeadLetterAlarm). They go back to the deliveries queue with SQS's own redrive (StartMessageMoveTask,
at most --rate messages a second), and the command waits until the move has finished. --copy moves
them by receiving, sending and deleting instead (for an endpoint without StartMessageMoveTask). A
redriven job whose attempt was already made, or whose delivery finished, is dropped by the delivery
function, so a redrive sends nothing twice.

fanout-failures: the fan-out failures queue holds, for each stream batch fan-out gave up on (the
FanoutFailuresAlarm), where that batch lies in the table's stream, not its records. For each message
this reads the batch's records from the stream (DynamoDB keeps them 24 hours), keeps the inserted
outbox events as the event source mapping's filter does, invokes the fan-out function with them, and
deletes the message once every record was fanned out. Fan-out is idempotent, so events fanned out
before need no care. Messages older than the stream's 24 hours cannot be replayed this way; they are
kept and reported.

The queues and the function are found from the stack (its outputs and resources); credentials and
region come from the usual AWS sources (AWS_PROFILE, AWS_REGION, ...). Needs boto3.
"""

import argparse
import base64
import datetime
import json
import sys
import time


def stack_targets(cloudformation, stack):
    """The queue URLs (from the stack's outputs) and the fan-out function's name."""
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    values = {output["OutputKey"]: output["OutputValue"] for output in outputs}
    fanout = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId="FanoutFunction")
    return {
        "dead_letter_queue_url": values["DeadLetterQueueUrl"],
        "deliveries_queue_url": values["DeliveriesQueueUrl"],
        "fanout_failures_queue_url": values["FanoutFailuresQueueUrl"],
        "fanout_function": fanout["StackResourceDetail"]["PhysicalResourceId"],
    }


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def move_dead_letters(sqs, dead_letter_url, rate=10, poll_seconds=5, out=print):
    """SQS's redrive: every message goes back to the queue it came from (the deliveries queue, whose
    redrive policy names this dead-letter queue). Returns the finished task's status."""
    source = queue_arn(sqs, dead_letter_url)
    handle = sqs.start_message_move_task(SourceArn=source, MaxNumberOfMessagesPerSecond=rate)["TaskHandle"]
    out(f"moving the messages of {source} back to their queue (task {handle})")
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=1)["Results"]
        task = next((task for task in tasks if task.get("TaskHandle") == handle), tasks[0] if tasks else {})
        status = task.get("Status", "UNKNOWN")
        out(f"{status}: {task.get('ApproximateNumberOfMessagesMoved', 0)} of "
            f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved")
        if status != "RUNNING":
            if status != "COMPLETED":
                raise RuntimeError(f"message move task {status}: {task.get('FailureReason', 'no reason given')}")
            return status
        time.sleep(poll_seconds)


def copy_dead_letters(sqs, dead_letter_url, deliveries_url, out=print):
    """The same move by hand: receive, send to the deliveries queue, then delete. Returns the count."""
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            sqs.send_message(QueueUrl=deliveries_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    out(f"moved {moved} delivery jobs back to the deliveries queue")
    return moved


def is_outbox_insert(record):
    """The fan-out mapping's filter: inserted items of kind EVENT."""
    image = record.get("dynamodb", {}).get("NewImage", {})
    return record.get("eventName") == "INSERT" and image.get("kind", {}).get("S") == "EVENT"


def _json_value(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(f"cannot put {type(value).__name__} in a stream event")


def batch_records(streams, batch):
    """The stream records of a failed batch (DDBStreamBatchInfo), as Lambda hands them to fan-out."""
    iterator = streams.get_shard_iterator(
        StreamArn=batch["streamArn"],
        ShardId=batch["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=batch["startSequenceNumber"],
    )["ShardIterator"]
    end = int(batch["endSequenceNumber"])
    records = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return records
            record = json.loads(json.dumps({**record, "eventSourceARN": batch["streamArn"]}, default=_json_value))
            records.append(record)
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def lambda_invoker(lambda_client, function):
    """Invokes the fan-out function synchronously; returns the sequence numbers it reports failed."""
    def invoke(records):
        response = lambda_client.invoke(FunctionName=function, Payload=json.dumps({"Records": records}).encode())
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise RuntimeError(f"fan-out failed: {payload.decode(errors='replace')}")
        failures = json.loads(payload or b"{}").get("batchItemFailures") or []
        return [failure.get("itemIdentifier") for failure in failures]
    return invoke


def replay_fanout_failures(sqs, streams, invoke, failures_url, dry_run=False, out=print):
    """Replays each failed batch through `invoke`; deletes its message once it all succeeded.
    Returns (replayed, kept) message counts."""
    replayed = kept = 0
    seen = set()
    # Messages left in the queue are made visible again at the end, for the next run.
    left = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=failures_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=300,
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            batch = json.loads(message["Body"]).get("DDBStreamBatchInfo")
            if not batch:
                out(f"{message['MessageId']}: not a stream failure record; kept")
                kept += 1
                left.append(message)
                continue
            try:
                records = [record for record in batch_records(streams, batch) if is_outbox_insert(record)]
            except Exception as err:  # noqa: BLE001 - e.g. TrimmedDataAccessException after 24 hours
                out(f"{message['MessageId']}: the batch cannot be read from the stream ({err}); kept")
                kept += 1
                left.append(message)
                continue
            if dry_run:
                out(f"{message['MessageId']}: would replay {len(records)} outbox events")
                left.append(message)
                continue
            failed = invoke(records) if records else []
            if failed:
                out(f"{message['MessageId']}: {len(failed)} of {len(records)} events failed again; kept")
                kept += 1
                left.append(message)
                continue
            sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=message["ReceiptHandle"])
            out(f"{message['MessageId']}: replayed {len(records)} outbox events")
            replayed += 1
    for message in left:
        sqs.change_message_visibility(QueueUrl=failures_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    out(f"fan-out failures: {replayed} replayed, {kept} kept")
    return replayed, kept


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["dead-letters", "fanout-failures"])
    parser.add_argument("--stack", required=True, help="the stack's name")
    parser.add_argument("--rate", type=int, default=10, help="dead-letters: messages moved per second")
    parser.add_argument("--copy", action="store_true", help="dead-letters: receive, send and delete instead")
    parser.add_argument("--dry-run", action="store_true", help="fanout-failures: only say what would be replayed")
    args = parser.parse_args()

    import boto3

    session = boto3.Session()
    targets = stack_targets(session.client("cloudformation"), args.stack)
    sqs = session.client("sqs")
    if args.command == "dead-letters":
        if args.copy:
            copy_dead_letters(sqs, targets["dead_letter_queue_url"], targets["deliveries_queue_url"])
        else:
            move_dead_letters(sqs, targets["dead_letter_queue_url"], rate=args.rate)
    else:
        invoke = lambda_invoker(session.client("lambda"), targets["fanout_function"])
        _, kept = replay_fanout_failures(
            sqs, session.client("dynamodbstreams"), invoke, targets["fanout_failures_queue_url"], args.dry_run,
        )
        if kept:
            sys.exit(1)


if __name__ == "__main__":
    main()
