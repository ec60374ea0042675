"""warden_proto: one line per .proto, compiled with Debian's protoc (offline)."""

load("@rules_cc//cc:defs.bzl", "cc_library")

def warden_proto(name, src, deps = [], grpc = False, visibility = None):
    """Generates C++ (and optionally gRPC) code for `src` and wraps it.

    Args:
      name: the cc_library to create, e.g. "session_cc_proto".
      src: the .proto file in this package, e.g. "session.proto".
      deps: other warden_proto targets whose .proto files `src` imports.
      grpc: also run grpc_cpp_plugin and link gRPC; the messages alone are
        then `name`_messages.
      visibility: the library's visibility.
    """
    base = src[:-len(".proto")]
    pkg = native.package_name()
    outs = [base + ".pb.h", base + ".pb.cc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    cmd = "$(location @system//:protoc) -I. --cpp_out=$(GENDIR) "
    tools = ["@system//:protoc"]
    if grpc:
        cmd += "--plugin=protoc-gen-grpc=$(location @system//:grpc_cpp_plugin) --grpc_out=$(GENDIR) "
        tools.append("@system//:grpc_cpp_plugin")
    cmd += pkg + "/" + src
    native.genrule(
        name = name + "_gen",
        srcs = [src] + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = cmd,
        tools = tools,
    )
    native.filegroup(name = name + "_srcs", srcs = [src] + [d + "_srcs" for d in deps], visibility = visibility)
    if not grpc:
        cc_library(
            name = name,
            srcs = [o for o in outs if o.endswith(".cc")],
            hdrs = [o for o in outs if o.endswith(".h")],
            deps = deps + ["@system//:protobuf"],
            visibility = visibility,
        )
        return

    # With services: the messages alone (`name`_messages, no gRPC: what the
    # proxy's statement path may use) and `name`, the services on top.
    cc_library(
        name = name + "_messages",
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        deps = deps + ["@system//:protobuf"],
        visibility = visibility,
    )
    cc_library(
        name = name,
        srcs = [base + ".grpc.pb.cc"],
        hdrs = [base + ".grpc.pb.h"],
        deps = [":" + name + "_messages", "@system//:grpc"],
        visibility = visibility,
    )
