"""Contacts (`CONTACT#`) and the identities that lead to them (`ID#`): read, created, extended and merged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from intake.model import Contact, ContactDetail
from intake.records import ContactPlan
from intake.store import keys
from intake.store.errors import ContactNotFoundError, mapped
from intake.store.items import expression_values, index_named, item_key, strip_keys, ticket_of
from intake.store.keys import iso
from intake.store.table import Table


class ContactsStore(Table):
    def identity(self, kind: str, value: str) -> str | None:
        item = self._get(keys.identity_pk(kind, value), keys.IDENTITY_SK)
        return None if item is None else str(item["contact_id"])

    def contact(self, contact_id: str) -> Contact | None:
        item = self._get(keys.contact_pk(contact_id), keys.META)
        return None if item is None else Contact.model_validate(strip_keys(item))

    def contact_detail(self, contact_id: str) -> ContactDetail:
        """The customer behind `contact_id` (following merges) with every ticket of theirs, newest first."""
        contact = self.contact(contact_id)
        for _ in range(8):  # a merged contact points to the one it became
            if contact is None or contact.merged_into is None:
                break
            contact = self.contact(contact.merged_into)
        if contact is None:
            raise ContactNotFoundError(contact_id)
        index = index_named("by_contact")
        tickets = [
            ticket_of(item)
            for owner in (contact.id, *contact.merged)
            for item in self._query(
                IndexName=index.name,
                KeyConditionExpression=f"{index.partition_key} = :owner",
                ExpressionAttributeValues=expression_values(owner=owner),
                ScanIndexForward=False,
            )
        ]
        tickets.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        return ContactDetail(contact=contact, tickets=tickets)

    def _contact_operations(self, plan: ContactPlan, at: datetime) -> list[tuple[str, dict[str, Any]]]:
        """The contact's part of a ticket write: a new contact, or new identities, a name, and merges."""
        operations: list[tuple[str, dict[str, Any]]] = [
            (
                "identity",
                {
                    "Put": self._put(
                        {
                            "PK": keys.identity_pk(kind, value),
                            "SK": keys.IDENTITY_SK,
                            "contact_id": plan.contact_id,
                            "kind": kind,
                        },
                        "attribute_not_exists(PK)",
                    )
                },
            )
            for kind, value in plan.new_identities
        ]
        phones = [v for k, v in plan.new_identities if k == "phone"]
        emails = [v for k, v in plan.new_identities if k == "email"]
        if plan.is_new:
            contact = {
                "PK": keys.contact_pk(plan.contact_id),
                "SK": keys.META,
                "id": plan.contact_id,
                "name": plan.name,
                "phones": phones,
                "emails": emails,
                "merged": [],
                "created_at": iso(at),
            }
            operations.append(("contact", {"Put": self._put(contact, "attribute_not_exists(PK)")}))
            return operations
        for other in plan.absorbed:
            operations += self._merge_operations(plan.contact_id, other, at)
            phones += list(other.phones)
            emails += list(other.emails)
        if not (phones or emails or plan.name or plan.absorbed):
            return operations
        # Learn identities (new or absorbed); take a name only when none is known; remember merges
        values: dict[str, Any] = {"phones": phones, "emails": emails, "merged": [c.id for c in plan.absorbed]}
        expression = (
            "SET phones = list_append(phones, :phones), emails = list_append(emails, :emails), "
            "merged = list_append(if_not_exists(merged, :none), :merged)"
        )
        values["none"] = []
        names: dict[str, str] = {}
        if plan.name:
            expression += ", #name = if_not_exists(#name, :name)"
            values["name"] = plan.name
            names["#name"] = "name"
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": item_key(keys.contact_pk(plan.contact_id), keys.META),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(merged_into)",
            "ExpressionAttributeValues": expression_values(**values),
        }
        if names:
            update["ExpressionAttributeNames"] = names
        operations.append(("contact", {"Update": update}))
        return operations

    def _merge_operations(self, survivor: str, other: Contact, at: datetime) -> list[tuple[str, dict[str, Any]]]:
        """`other` is the same customer as `survivor`: it points there, its identities move, an event says so."""
        operations: list[tuple[str, dict[str, Any]]] = [
            (
                "merged-contact",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": item_key(keys.contact_pk(other.id), keys.META),
                        "UpdateExpression": "SET merged_into = :survivor",
                        "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(merged_into)",
                        "ExpressionAttributeValues": expression_values(survivor=survivor),
                    }
                },
            ),
            (
                "merge-event",
                {
                    "Put": self._put(
                        {
                            "PK": keys.contact_pk(survivor),
                            "SK": keys.event_sk(at, "merged", other.id),
                            "kind": "merged",
                            "at": iso(at),
                            "detail": {"absorbed": other.id, "identities": len(other.phones) + len(other.emails)},
                        }
                    )
                },
            ),
        ]
        for kind, values in (("phone", other.phones), ("email", other.emails)):
            operations += [
                (
                    "identity",
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": item_key(keys.identity_pk(kind, value), keys.IDENTITY_SK),
                            "UpdateExpression": "SET contact_id = :survivor",
                            "ConditionExpression": "contact_id = :other",
                            "ExpressionAttributeValues": expression_values(survivor=survivor, other=other.id),
                        }
                    },
                )
                for value in values
            ]
        return operations

    def name_contact(self, contact_id: str, name: str) -> None:
        """Give a contact a name if it has none yet (a caller ID name that arrived late)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=item_key(keys.contact_pk(contact_id), keys.META),
                UpdateExpression="SET #name = if_not_exists(#name, :name)",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues=expression_values(name=name),
            )
        except ClientError as error:
            raise mapped(error) from None
