"""The credit-explainer scoring API (AWS Lambda behind API Gateway).

Handler: ``scoring_api.app.lambda_handler``. Importing this package does not
import the handler module (which reads its configuration and creates its boto3
client at import time).
"""
