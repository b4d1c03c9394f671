#pragma once
// Atomic outputs, hashing and JSON/CSV file helpers.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

namespace ctbmd {

/// Throws UsageError when `path` exists and `force` is false (exit code 1).
void checkWritable(const std::filesystem::path& path, bool force);

/// Temporary sibling of `path` that keeps its extension(s) (so ITK picks the same format),
/// e.g. "out/seg.nii.gz" -> "out/.seg.tmp-1234-1.nii.gz".
std::filesystem::path temporarySibling(const std::filesystem::path& path);

/// Calls write(tmp) and renames tmp onto `path`. If write throws, tmp is removed and the
/// exception propagates; `path` is never left half-written. Creates the parent folder.
void atomicWrite(const std::filesystem::path& path, bool force,
                 const std::function<void(const std::filesystem::path& tmp)>& write);

void writeTextFile(const std::filesystem::path& path, const std::string& text, bool force);
void writeJsonFile(const std::filesystem::path& path, const nlohmann::json& j, bool force);
nlohmann::json readJsonFile(const std::filesystem::path& path);
/// nlohmann_json's exception text for people: "[json.exception.out_of_range.403] key 'x' not
/// found" becomes "key 'x' not found".
std::string jsonProblem(const std::exception& e);
/// "'file' " for messages (empty when `file` is).
std::string quotedFile(const std::string& file);

/// Hex SHA-256 of a byte string / a file's content.
std::string sha256Hex(const std::string& bytes);
std::string sha256File(const std::filesystem::path& path);

/// gzip-compresses `in` into `out`: one gzip member whose deflate chunks are compressed in
/// parallel (pigz's method). Fast levels suit noisy CT.
void gzipFile(const std::filesystem::path& in, const std::filesystem::path& out, int level, int threads,
              bool run_length = false);

/// Strips known image extensions: "a/b/case01.nii.gz" -> "case01".
std::string imageStem(const std::filesystem::path& p);

/// A CSV file with a header row (RFC 4180 quoting; blank lines and lines starting with '#'
/// skipped). Column lookup is case-insensitive.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<long> line_numbers;  // of each row in the file
  /// Index of the first column named any of `names`, or -1.
  int column(std::initializer_list<const char*> names) const;
  const std::string& cell(size_t row, int col) const;  // "" when absent
};
std::vector<std::string> splitCsvLine(const std::string& line);
/// One CSV field as written: quoted (quotes doubled) when it holds a comma, quote or line break;
/// a line break becomes a space. splitCsvLine reads it back.
std::string csvField(const std::string& s);
/// `s` as one word for a POSIX shell: as it is when it holds only safe characters
/// (letters, digits, -_./=:,+@%), else in single quotes (a quote inside as '\''); "" is ''.
std::string shellQuote(const std::string& s);
CsvTable readCsv(const std::filesystem::path& path);

}  // namespace ctbmd
