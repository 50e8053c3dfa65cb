"""infra/redrive.py against the template's queues and table on moto (scripts/test.sh runs this).

    .venv/bin/python -m unittest infra/test_redrive.py    (moto on REFWIRE_REDRIVE_MOTO_PORT, 5078)

moto (5.2) has no StartMessageMoveTask, so SQS's own redrive is checked against botocore's model of
the SQS API with a Stubber (the requests must be valid), and the by-hand move runs on moto. Lambda
needs Docker on moto, so the fan-out replay invokes a stand-in that records what it was given.
"""

import json
import os
import pathlib
import sys
import unittest

import boto3
from botocore.stub import Stubber

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import moto_stack  # noqa: E402
import redrive  # noqa: E402


class OnMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        port = int(os.environ.get("REFWIRE_REDRIVE_MOTO_PORT", "5078"))
        cls.server, cls.endpoint = moto_stack.start_moto(port)
        cls.client = staticmethod(moto_stack.clients(cls.endpoint))
        cls.environment = moto_stack.create_stack(cls.endpoint, "redrive-test")
        cls.sqs = cls.client("sqs")

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait()

    def bodies(self, url):
        bodies = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
            if not messages:
                return sorted(bodies)
            for message in messages:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def test_dead_letters_go_back_to_the_deliveries_queue_by_hand(self):
        dead_letters = self.environment["REFWIRE_DEAD_LETTER_QUEUE_URL"]
        jobs = [json.dumps({"delivery_id": f"dlv_{n}", "attempt": 2}) for n in range(13)]
        for job in jobs:
            self.sqs.send_message(QueueUrl=dead_letters, MessageBody=job)
        moved = redrive.copy_dead_letters(self.sqs, dead_letters, self.environment["REFWIRE_QUEUE_URL"], out=lambda _: None)
        self.assertEqual(moved, 13)
        self.assertEqual(self.bodies(dead_letters), [])
        self.assertEqual(self.bodies(self.environment["REFWIRE_QUEUE_URL"]), sorted(jobs))

    def test_a_failed_fanout_batch_is_replayed_from_the_stream(self):
        dynamodb = self.client("dynamodb")
        table = self.environment["REFWIRE_TABLE"]
        items = [
            {"pk": {"S": "P#1"}, "sk": {"S": "EVT#1"}, "kind": {"S": "EVENT"}, "body": {"S": "one"}},
            {"pk": {"S": "P#1"}, "sk": {"S": "REF#1"}, "kind": {"S": "REFERRAL"}},
            {"pk": {"S": "P#1"}, "sk": {"S": "EVT#2"}, "kind": {"S": "EVENT"}, "body": {"S": "two"}},
            {"pk": {"S": "P#1"}, "sk": {"S": "EVT#3"}, "kind": {"S": "EVENT"}, "body": {"S": "after the batch"}},
        ]
        for item in items:
            dynamodb.put_item(TableName=table, Item=item)
        stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        streams = self.client("dynamodbstreams")
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        sequence = [record["dynamodb"]["SequenceNumber"] for record in streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]
        self.assertEqual(len(sequence), 4)

        # What Lambda writes to the on-failure destination for a stream batch: where it lies.
        failures = self.environment["REFWIRE_FANOUT_FAILURES_QUEUE_URL"]
        batch = {"shardId": shard, "startSequenceNumber": sequence[0], "endSequenceNumber": sequence[2],
                 "batchSize": 2, "streamArn": stream_arn}
        self.sqs.send_message(QueueUrl=failures, MessageBody=json.dumps({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
            "version": "1.0", "DDBStreamBatchInfo": batch,
        }))

        calls = []
        lines = []
        # A dry run replays nothing and leaves the message for the next run.
        self.assertEqual(redrive.replay_fanout_failures(self.sqs, streams, calls.append, failures, dry_run=True, out=lines.append), (0, 0))
        self.assertEqual(calls, [])
        # Fan-out fails again: the message stays.
        self.assertEqual(redrive.replay_fanout_failures(self.sqs, streams, lambda records: [records[0]["dynamodb"]["SequenceNumber"]], failures, out=lines.append), (0, 1))

        def fanout(records):
            calls.append(records)
            return []

        self.assertEqual(redrive.replay_fanout_failures(self.sqs, streams, fanout, failures, out=lines.append), (1, 0))
        self.assertEqual(len(calls), 1)
        replayed = calls[0]
        # Only the batch's inserted outbox events, in order, shaped as Lambda's stream event records.
        self.assertEqual([record["dynamodb"]["NewImage"]["body"]["S"] for record in replayed], ["one", "two"])
        for record in replayed:
            self.assertEqual(record["eventName"], "INSERT")
            self.assertEqual(record["eventSourceARN"], stream_arn)
            json.dumps(record)
        self.assertEqual(self.bodies(failures), [])


class MessageMoveTask(unittest.TestCase):
    def test_requests_are_valid_sqs_calls(self):
        sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        url = "https://sqs.us-east-1.amazonaws.com/123456789012/refwire-DeliveriesDeadLetterQueue-X"
        arn = "arn:aws:sqs:us-east-1:123456789012:refwire-DeliveriesDeadLetterQueue-X"
        with Stubber(sqs) as stub:
            stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": arn}},
                              {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
            stub.add_response("start_message_move_task", {"TaskHandle": "handle-1"},
                              {"SourceArn": arn, "MaxNumberOfMessagesPerSecond": 5})
            stub.add_response("list_message_move_tasks", {"Results": [
                {"TaskHandle": "handle-1", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 3,
                 "ApproximateNumberOfMessagesToMove": 7}]}, {"SourceArn": arn, "MaxResults": 1})
            stub.add_response("list_message_move_tasks", {"Results": [
                {"TaskHandle": "handle-1", "Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 7,
                 "ApproximateNumberOfMessagesToMove": 7}]}, {"SourceArn": arn, "MaxResults": 1})
            lines = []
            self.assertEqual(redrive.move_dead_letters(sqs, url, rate=5, poll_seconds=0, out=lines.append), "COMPLETED")
            stub.assert_no_pending_responses()
        self.assertEqual(lines[-1], "COMPLETED: 7 of 7 moved")

    def test_a_failed_task_is_an_error(self):
        sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        with Stubber(sqs) as stub:
            stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:1:q"}})
            stub.add_response("start_message_move_task", {"TaskHandle": "h"})
            stub.add_response("list_message_move_tasks", {"Results": [
                {"TaskHandle": "h", "Status": "FAILED", "FailureReason": "AWS.SimpleQueueService.NonExistentQueue"}]})
            with self.assertRaisesRegex(RuntimeError, "NonExistentQueue"):
                redrive.move_dead_letters(sqs, "https://sqs/q", poll_seconds=0, out=lambda _: None)


if __name__ == "__main__":
    unittest.main()
