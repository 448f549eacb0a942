"""Metrics API: the query string it takes and the shapes it answers (for the schema)."""
from __future__ import annotations

import datetime as dt

from rest_framework import serializers

from analytics.metrics import COUNTS, DERIVED, RATES

MAX_RANGE_DAYS = 400
MAX_HOURLY_DAYS = 31
DEFAULT_RANGE_DAYS = 30


class MetricsRangeSerializer(serializers.Serializer):
    """`from` / `to`: local dates of the tenant's analytics time zone, both included."""

    # `from` is a Python keyword: declared through the fields mapping below.
    to = serializers.DateField(required=False, help_text="Last day, included (default: today)")
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, help_text="csv: a spreadsheet")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False, help_text="First day (default: 29 days before to)")
        return fields

    def validate(self, attrs):
        last = attrs.get("to") or self.context["today"]
        first = attrs.get("from") or last - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if last < first:
            raise serializers.ValidationError({"to": "must not be before from"})
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError({"to": f"at most {MAX_RANGE_DAYS} days after from"})
        granularity = attrs.get("granularity", "day")
        if granularity == "hour" and (last - first).days + 1 > MAX_HOURLY_DAYS:
            raise serializers.ValidationError({"granularity": f"hour covers at most {MAX_HOURLY_DAYS} days"})
        return {**attrs, "from": first, "to": last, "granularity": granularity}


class CampaignMetricsQuerySerializer(MetricsRangeSerializer):
    granularity = serializers.ChoiceField(choices=["hour", "day", "week"], required=False,
                                          help_text="Series buckets (default day; hour: UTC hours)")


class TenantMetricsQuerySerializer(MetricsRangeSerializer):
    granularity = serializers.ChoiceField(choices=["day", "week"], required=False,
                                          help_text="Series buckets (default day)")


class DomainMetricsQuerySerializer(MetricsRangeSerializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100,
                                     help_text="The domains sent most to, at most this many")


def _block_fields() -> dict[str, serializers.Field]:
    fields: dict[str, serializers.Field] = {name: serializers.IntegerField() for name in (*COUNTS, *DERIVED)}
    fields.update({name: serializers.FloatField(allow_null=True) for name in RATES})
    return fields


def _with_block(class_name: str, /, **extra: serializers.Field) -> type[serializers.Serializer]:
    return type(class_name, (serializers.Serializer,), {**extra, **_block_fields()})


MetricsBlockSerializer = _with_block("MetricsBlockSerializer")
StepMetricsSerializer = _with_block("StepMetricsSerializer", node_id=serializers.CharField(),
                                    plan_source=serializers.CharField())
PeriodMetricsSerializer = _with_block("PeriodMetricsSerializer", period=serializers.CharField(
    help_text="Local date (day, week's Monday) or UTC hour"))
SenderMetricsSerializer = _with_block("SenderMetricsSerializer", sender_id=serializers.IntegerField(),
                                      from_email=serializers.CharField())
CampaignRowMetricsSerializer = _with_block("CampaignRowMetricsSerializer", campaign_id=serializers.IntegerField(),
                                           name=serializers.CharField())
DomainMetricsSerializer = _with_block("DomainMetricsSerializer", domain=serializers.CharField())


def _answer(class_name: str, /, **extra: serializers.Field) -> type[serializers.Serializer]:
    fields = {"to": serializers.DateField(), "time_zone": serializers.CharField(), **extra}
    serializer = type(class_name, (serializers.Serializer,), fields)
    serializer._declared_fields = {"from": serializers.DateField(), **serializer._declared_fields}
    return serializer


CampaignMetricsAnswerSerializer = _answer(
    "CampaignMetricsAnswerSerializer", campaign_id=serializers.IntegerField(), granularity=serializers.CharField(),
    totals=MetricsBlockSerializer(), by_step=StepMetricsSerializer(many=True),
    series=PeriodMetricsSerializer(many=True), by_sender=SenderMetricsSerializer(many=True))
TenantMetricsAnswerSerializer = _answer(
    "TenantMetricsAnswerSerializer", granularity=serializers.CharField(), totals=MetricsBlockSerializer(),
    series=PeriodMetricsSerializer(many=True), by_campaign=CampaignRowMetricsSerializer(many=True))
SenderMetricsAnswerSerializer = _answer("SenderMetricsAnswerSerializer", senders=SenderMetricsSerializer(many=True))
DomainMetricsAnswerSerializer = _answer("DomainMetricsAnswerSerializer", domains=DomainMetricsSerializer(many=True))
