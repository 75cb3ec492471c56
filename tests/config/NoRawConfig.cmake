# Fails when a file outside src/config includes the raw YAML config (src/config/Config.h) or
# reads a key by name (cfg.getInt("...") and friends): components take the typed sections of
# src/config/Settings.h. The config's own tests (tests/config, the config fuzz target) may.
# Run: cmake -DROOT=<source dir> -P NoRawConfig.cmake
file(GLOB_RECURSE files RELATIVE ${ROOT}
  ${ROOT}/src/*.h ${ROOT}/src/*.cpp ${ROOT}/tests/*.h ${ROOT}/tests/*.cpp ${ROOT}/bench/*.h ${ROOT}/bench/*.cpp)
set(allowed "^(src/config/|tests/config/|tests/fuzz/ConfigFuzz.cpp$)")
set(bad "")
foreach(f ${files})
  if(f MATCHES "${allowed}")
    continue()
  endif()
  file(STRINGS ${ROOT}/${f} lines REGEX "#include \"src/config/Config.h\"|\\.get(Int|Float|Bool|String|OptFloat|FloatList|StringList)\\(\"")
  if(lines)
    list(APPEND bad "${f}: ${lines}")
  endif()
endforeach()
list(LENGTH files n)
if(n LESS 50)
  message(FATAL_ERROR "found only ${n} source files under ${ROOT}: wrong ROOT?")
endif()
if(bad)
  string(REPLACE ";" "\n  " text "${bad}")
  message(FATAL_ERROR "the raw config is used outside src/config (take a section of src/config/Settings.h instead):\n  ${text}")
endif()
message(STATUS "checked ${n} files: the raw config stays in src/config")
