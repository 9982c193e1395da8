"""The seam to AWS: the only package in relay that imports boto3 or botocore.

`session.py` opens sessions per account (credential chain, profiles,
`AWS_ENDPOINT_URL`, assume-role with an optional external id); each service
module (`s3.py`, `kms.py`, ...) wraps a client in typed methods that translate
botocore's errors into relay's own (`errors.py`), with the account, the
resource and the operation in the message.
"""
