"""The packaged template (build/<stage>/sam.yaml) as one deployed stack would see it.

CloudFormation intrinsics (!Ref, !GetAtt, !Sub, !Join, !Select, !FindInMap) are
resolved to concrete values for a fixed account, region and stack name, with
physical names in the shape CloudFormation generates for resources that are
not named in the template (<stack>-<LogicalId>-<suffix>). The IAM replay
builds the recorded calls' ARNs with the same account, region and names, so a
role's Resource and a call's resource meet in the form they take in the cloud.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from scripts.package import load_cfn_yaml

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK = "delineate-prod"
SUFFIX = "IAMREPLAY1"  # stands for the random part CloudFormation appends to generated names
SECRET_SUFFIX = "AbCdEf"  # Secrets Manager appends six random characters to a secret's ARN


class UnresolvedIntrinsic(ValueError):
    """An intrinsic this resolver does not know: the replay stops rather than guess."""


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str  # "app.app", "app.process_work", ...: what a dev process runs
    role_id: str
    environment: dict[str, Any]  # as written in the template (intrinsics unresolved)


@dataclass(frozen=True)
class Statement:
    """One statement of a role's inline policy, its intrinsics resolved."""

    role_id: str
    policy_name: str
    index: int
    body: dict[str, Any]

    @property
    def label(self) -> str:
        sid = self.body.get("Sid") or f"#{self.index}"
        return f"{self.role_id}/{self.policy_name}/{sid}"


class DeployedTemplate:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.template = load_cfn_yaml(path)
        self.resources: dict[str, dict] = self.template["Resources"]
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
        }

    # -- functions and their roles ------------------------------------------------

    @cached_property
    def functions(self) -> dict[str, Function]:
        """By handler ("app.process_work"), every AWS::Serverless::Function of the stack."""
        found = {}
        for logical_id, body in self.resources.items():
            if body.get("Type") != "AWS::Serverless::Function":
                continue
            properties = body["Properties"]
            role = properties.get("Role")
            if not (isinstance(role, dict) and "Fn::GetAtt" in role):
                raise UnresolvedIntrinsic(f"{logical_id}: Role is not !GetAtt <role>.Arn: {role!r}")
            variables = properties.get("Environment", {}).get("Variables", {})
            found[properties["Handler"]] = Function(logical_id, properties["Handler"], role["Fn::GetAtt"][0], variables)
        return found

    def statements(self, role_id: str) -> list[Statement]:
        """The role's inline policy statements, resolved. Managed policies are refused: not evaluated here."""
        properties = self.resources[role_id]["Properties"]
        if properties.get("ManagedPolicyArns"):
            raise UnresolvedIntrinsic(f"{role_id}: managed policies are not evaluated by the replay")
        result = []
        for policy in properties.get("Policies", []):
            document = self.resolve(policy["PolicyDocument"])
            body = document["Statement"]
            for index, statement in enumerate(body if isinstance(body, list) else [body]):
                result.append(Statement(role_id, policy["PolicyName"], index, statement))
        return result

    def hash_key(self, table_id: str, index_name: str | None = None) -> str | None:
        """The partition key attribute of a table (or of one of its indexes), for dynamodb:LeadingKeys."""
        properties = self.resources[table_id]["Properties"]
        schema = properties.get("KeySchema", [])
        if index_name:
            indexes = properties.get("GlobalSecondaryIndexes", []) + properties.get("LocalSecondaryIndexes", [])
            schema = next((index["KeySchema"] for index in indexes if index["IndexName"] == index_name), [])
        return next((key["AttributeName"] for key in schema if key["KeyType"] == "HASH"), None)

    # -- intrinsics ---------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (name, argument), *_ = node.items()
            if name == "Ref":
                return self.ref(argument)
            if name.startswith("Fn::"):
                return self._function(name, argument)
        return {key: self.resolve(value) for key, value in node.items()}

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical_id, attribute)
        if name == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, {key: self.resolve(value) for key, value in variables.items()})
        if name == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items))
        if name == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Fn::FindInMap":
            mapping, first, second = (self.resolve(item) for item in argument)
            return self.template["Mappings"][mapping][str(first)][str(second)]
        raise UnresolvedIntrinsic(f"{name} {argument!r}")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.template["Parameters"][name].get("Default")
        body = self.resources.get(name)
        if body is None:
            raise UnresolvedIntrinsic(f"Ref {name}")
        kind = body["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.physical_name(name)}"
        if kind == "AWS::SecretsManager::Secret":
            return (
                f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{self.physical_name(name)}-{SECRET_SUFFIX}"
            )
        return self.physical_name(name)

    def physical_name(self, logical_id: str) -> str:
        """The name the resource gets: its own name property, or one CloudFormation generates."""
        body = self.resources[logical_id]
        properties = body.get("Properties", {})
        for key in ("TableName", "QueueName", "BucketName", "Name", "LogGroupName", "FunctionName", "RoleName"):
            if key in properties:
                return str(self.resolve(properties[key]))
        generated = f"{STACK}-{logical_id}-{SUFFIX}"
        return generated.lower() if body["Type"] == "AWS::S3::Bucket" else generated

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        arns = {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::Serverless::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if attribute == "QueueName" and kind == "AWS::SQS::Queue":
            return name
        raise UnresolvedIntrinsic(f"Fn::GetAtt {logical_id}.{attribute} ({kind})")

    def logical_id_of(self, node: Any) -> str | None:
        """The resource an environment value names (!Ref X, !GetAtt X.Attr), if any."""
        if isinstance(node, dict) and len(node) == 1:
            (name, argument), *_ = node.items()
            if name == "Ref" and argument in self.resources:
                return argument
            if name == "Fn::GetAtt":
                return argument[0] if isinstance(argument, list) else argument.split(".", 1)[0]
        return None
