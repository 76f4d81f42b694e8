# ctest `docs_samples_extraction`: the block extraction of markdown_blocks.cmake
# returns fixtures/tricky.md's blocks byte for byte, although they are full of what
# CMake likes to reinterpret: `;`, `[`, `]`, `\`, `${...}`, `@VAR@`, quotes.
#
#   cmake -P extraction_test.cmake
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/markdown_blocks.cmake)

set(fixtures ${CMAKE_CURRENT_LIST_DIR}/fixtures)
set(blocks 0)
set(mismatches 0)
macro(compare_block)
    math(EXPR blocks "${blocks} + 1")
    set(expected_file "${fixtures}/tricky_${block_kind}_1.txt")
    file(READ "${expected_file}" expected)
    if(NOT "${block_text}" STREQUAL "${expected}")
        file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/tricky_${block_kind}_1.extracted" "${block_text}")
        message(SEND_ERROR "the ${block_kind} block at tricky.md:${block_first_line} differs from ${expected_file}; "
                           "what was extracted is in ${CMAKE_CURRENT_BINARY_DIR}/tricky_${block_kind}_1.extracted")
        math(EXPR mismatches "${mismatches} + 1")
    endif()
endmacro()
cartesia_for_each_cpp_block(${fixtures}/tricky.md compare_block)

if(NOT blocks EQUAL 2)
    message(FATAL_ERROR "expected one sample and one synopsis in tricky.md, found ${blocks} C++ blocks")
endif()
if(mismatches GREATER 0)
    message(FATAL_ERROR "${mismatches} block(s) extracted wrongly")
endif()
message(STATUS "tricky.md: 2 blocks extracted exactly")
