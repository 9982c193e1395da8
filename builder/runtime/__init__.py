"""One model of AWS Lambda's Python runtime: which runtimes exist, what they run on, how code is mounted."""
