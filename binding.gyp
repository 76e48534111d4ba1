{
  "targets": [
    {
      "target_name": "ctrwatch",
      "sources": [
        "native/addon.cc",
        "native/sensor.cc",
        "native/sensor_contain.cc",
        "native/libbpf_log.cc",
        "native/malloc_trim.cc",
        "native/young_gen.cc",
        "native/loader.c",
        "native/probe.c",
        "native/contain.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf",
        "bpf/.output"
      ],
      "libraries": ["-lbpf", "-lelf", "-lz"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wno-unused-parameter"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions"]
    }
  ]
}
