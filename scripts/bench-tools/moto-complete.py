#!/usr/bin/env python3
"""Time S3 CompleteMultipartUpload alone: upload PARTS parts of PART_BYTES each to the endpoint in
AWS_ENDPOINT_URL_S3 (bucket BUCKET), then print the seconds CompleteMultipartUpload took.

    moto-complete.py BUCKET PARTS [PART_BYTES]

scripts/bench uses it to tell moto's own cost (it concatenates the parts in Python when the upload
completes; real S3 completes in constant time) from the tool's.
"""
import os, sys, time
import boto3

bucket, parts = sys.argv[1], int(sys.argv[2])
part_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 16 << 20
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
key = "moto-complete-probe"
upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
body = os.urandom(part_bytes)
done = []
for number in range(1, parts + 1):
    etag = s3.upload_part(Bucket=bucket, Key=key, PartNumber=number, UploadId=upload, Body=body)["ETag"]
    done.append({"PartNumber": number, "ETag": etag})
start = time.monotonic()
s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done})
print(f"{time.monotonic() - start:.2f}")
s3.delete_object(Bucket=bucket, Key=key)
