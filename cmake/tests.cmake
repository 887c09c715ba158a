# Test layout: tests/unit/<module>/*.cpp -> test_<module> linked to nanovllm_<module>;
# tests/e2e/*.cpp -> test_e2e; tests/gpu/*.cpp -> test_gpu (ctest label "gpu"; its tests skip
# themselves where no GPU is present). Tests find ../shared through NANOVLLM_SHARED_DIR.
find_package(GTest REQUIRED)
include(GoogleTest)

# Optimisation of the test sources themselves in optimised builds (appended after the build
# type's flags, so it wins); the libraries under test keep the build type's flags. Test sources
# spend their build time generating code for gtest and nlohmann::json expansions, not in what
# they run: -Og builds them about a third faster than -O3 and keeps the warnings that need data
# flow analysis (-O0 drops some). scripts/test.sh's sanitizer pass uses -O0. Empty: the build
# type's flags alone.
set(NANOVLLM_TEST_OPT_FLAGS "-Og" CACHE STRING
    "Optimisation flags for test sources in Release/RelWithDebInfo/MinSizeRel builds")
separate_arguments(test_opt_flags UNIX_COMMAND "${NANOVLLM_TEST_OPT_FLAGS}")

# ../shared beside the checkout, or where NANOVLLM_SHARED_DIR points (the GPU machine gets a copy).
if(DEFINED ENV{NANOVLLM_SHARED_DIR})
  set(NANOVLLM_SHARED_DIR $ENV{NANOVLLM_SHARED_DIR})
else()
  get_filename_component(NANOVLLM_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared ABSOLUTE)
endif()
set(test_defs NANOVLLM_SHARED_DIR="${NANOVLLM_SHARED_DIR}"
              NANOVLLM_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
              NANOVLLM_BINARY_DIR="${CMAKE_BINARY_DIR}")

function(nanovllm_test name sources labels)
  add_executable(${name} ${sources})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARGN} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE ${test_defs})
  target_compile_options(${name} PRIVATE "$<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:${test_opt_flags}>")
  # ctest starts the costliest tests first. A clean checkout has no timing history, so the slow
  # kinds are marked (Python CLI tests, then end-to-end tests: seconds each, unit tests take
  # milliseconds); unmarked, they came last in test order and ran alone at the end.
  set(cost 1)
  if(labels STREQUAL "e2e")
    set(cost 10)
  endif()
  # ctest runs tests side by side on few cores: OpenMP threads that spin at barriers while their
  # partners wait for a core turn every parallel region into a stall (seen: 7 s vs 0.05 s).
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS "${labels}" TIMEOUT 900 COST ${cost}
                                  ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endfunction()

file(GLOB unit_dirs LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/tests/unit/*)
foreach(dir ${unit_dirs})
  if(IS_DIRECTORY ${dir})
    get_filename_component(module ${dir} NAME)
    file(GLOB sources CONFIGURE_DEPENDS ${dir}/*.cpp)
    if(sources AND TARGET nanovllm_${module})  # optional modules (server) may be absent
      nanovllm_test(test_${module} "${sources}" "unit" nanovllm_${module})
    endif()
  endif()
endforeach()

file(GLOB e2e_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/*.cpp)
if(e2e_sources)
  # The engine, not the CLI: no end-to-end test calls the CLI (tests/python drive the binary), and
  # the sanitizer pass then need not compile src/cli, its most expensive module.
  nanovllm_test(test_e2e "${e2e_sources}" "e2e" nanovllm_engine)
endif()

file(GLOB gpu_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/gpu/*.cpp)
if(gpu_sources AND NANOVLLM_CUDA)  # they call the CUDA backend; without a GPU they skip at run time
  nanovllm_test(test_gpu "${gpu_sources}" "gpu" nanovllm_cli)
endif()

# tests/tools/<name>.cpp -> small executables that Python tests drive (linked to everything).
file(GLOB tool_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/tools/*.cpp)
foreach(src ${tool_sources})
  get_filename_component(tool ${src} NAME_WE)
  add_executable(${tool} ${src})
  target_link_libraries(${tool} PRIVATE nanovllm_cli)
  target_compile_definitions(${tool} PRIVATE ${test_defs})
endforeach()

# tests/python/test_*.py -> one ctest each, run with pytest; they find the binaries through
# NANOVLLM_BINARY_DIR and ../shared through NANOVLLM_SHARED_DIR.
find_package(Python3 COMPONENTS Interpreter)
file(GLOB py_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/python/test_*.py)
foreach(py ${py_tests})
  get_filename_component(name ${py} NAME_WE)
  add_test(NAME py_${name} COMMAND ${Python3_EXECUTABLE} -m pytest -q -x ${py})
  set_tests_properties(py_${name} PROPERTIES LABELS "python"
    ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;NANOVLLM_BINARY_DIR=${CMAKE_BINARY_DIR};NANOVLLM_SHARED_DIR=${NANOVLLM_SHARED_DIR};NANOVLLM_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    TIMEOUT 900 COST 100)  # the slowest tests (see COST above)
endforeach()
