"""Jaeger's query API v3 over gRPC, for the one search its HTTP gateway cannot do: by
attribute (the gateway drops `query.attributes`).

`jaeger.api_v3.QueryService/FindTraces` takes a FindTracesRequest and streams OTLP
TracesData. The request messages are declared here from jaeger-idl's query_service.proto
(field numbers as there) and built with protobuf's descriptor pool, so no generated code
is needed; the answers are parsed with opentelemetry-proto's own TracesData.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

FIND_TRACES = "/jaeger.api_v3.QueryService/FindTraces"


@cache
def request_class() -> Any:
    """The FindTracesRequest message class (jaeger-idl proto/api_v3/query_service.proto)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    proto = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="dnnprof_tests/jaeger_api_v3.proto",
        package="jaeger.api_v3",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    query = file.message_type.add(name="TraceQueryParameters")
    entry = query.nested_type.add(name="AttributesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
    for name, number, kind, type_name, label in (
        ("service_name", 1, proto.TYPE_STRING, "", proto.LABEL_OPTIONAL),
        ("attributes", 3, proto.TYPE_MESSAGE,
         ".jaeger.api_v3.TraceQueryParameters.AttributesEntry", proto.LABEL_REPEATED),
        ("start_time_min", 4, proto.TYPE_MESSAGE, ".google.protobuf.Timestamp", proto.LABEL_OPTIONAL),
        ("start_time_max", 5, proto.TYPE_MESSAGE, ".google.protobuf.Timestamp", proto.LABEL_OPTIONAL),
        ("search_depth", 8, proto.TYPE_INT32, "", proto.LABEL_OPTIONAL),
    ):
        query.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            query.field[-1].type_name = type_name
    request = file.message_type.add(name="FindTracesRequest")
    request.field.add(name="query", number=1, type=proto.TYPE_MESSAGE, label=proto.LABEL_OPTIONAL,
                      type_name=".jaeger.api_v3.TraceQueryParameters")
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("jaeger.api_v3.FindTracesRequest"))


def find_trace_ids(
    target: str,
    service: str,
    attributes: dict[str, str],
    start_min: datetime,
    start_max: datetime,
    timeout_s: float = 10.0,
    search_depth: int = 100,
) -> list[str]:
    """Hex ids of the service's traces that carry every attribute (span or resource), sorted."""
    import grpc
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    request = request_class()()
    query = request.query
    query.service_name = service
    query.attributes.update(attributes)
    query.start_time_min.FromDatetime(start_min)
    query.start_time_max.FromDatetime(start_max)
    query.search_depth = search_depth
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_stream(
            FIND_TRACES,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=TracesData.FromString,
        )
        ids: set[str] = set()
        try:
            for data in call(request, timeout=timeout_s):
                for resource_spans in data.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        ids.update(span.trace_id.hex() for span in scope_spans.spans)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
    return sorted(ids)
