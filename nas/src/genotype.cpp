// Genotype: validation, the metanas text form (printer and parser), JSON,
// Graphviz DOT and rendering through the `dot` program.
#include "metanas/nas/genotype.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "metanas/engine/error.h"

namespace metanas::nas {

using nlohmann::json;

// ---- validation / equality ----

namespace {

void validate_cell(const std::vector<GenotypeNode>& cell, const std::vector<int>& concat,
                   const char* name) {
  MN_CHECK(!cell.empty(), "Genotype: the ", name, " cell has no nodes");
  for (size_t i = 0; i < cell.size(); ++i) {
    MN_CHECK(!cell[i].empty(), "Genotype: ", name, " node ", i, " has no edges");
    for (const GenotypeEdge& e : cell[i]) {
      MN_CHECK(e.input >= 0 && e.input < static_cast<int>(i) + 2, "Genotype: ", name, " node ", i,
               " reads state ", e.input, ", which does not exist yet (valid 0..", i + 1, ")");
      primitive_name(e.op);  // throws for an invalid enum value
    }
  }
  MN_CHECK(!concat.empty(), "Genotype: ", name, "_concat is empty");
  std::set<int> seen;
  for (int s : concat) {
    MN_CHECK(s >= 0 && s < static_cast<int>(cell.size()) + 2, "Genotype: ", name, "_concat index ", s,
             " outside 0..", cell.size() + 1);
    MN_CHECK(seen.insert(s).second, "Genotype: ", name, "_concat lists state ", s, " twice");
  }
}

}  // namespace

void Genotype::validate() const {
  validate_cell(normal, normal_concat, "normal");
  validate_cell(reduce, reduce_concat, "reduce");
}

bool Genotype::operator==(const Genotype& o) const {
  return normal == o.normal && reduce == o.reduce && normal_concat == o.normal_concat &&
         reduce_concat == o.reduce_concat;
}

// ---- text form ----

namespace {

void print_cell(std::ostringstream& os, const std::vector<GenotypeNode>& cell) {
  os << "[";
  for (size_t i = 0; i < cell.size(); ++i) {
    if (i) os << ", ";
    os << "[";
    for (size_t e = 0; e < cell[i].size(); ++e) {
      if (e) os << ", ";
      os << "('" << primitive_name(cell[i][e].op) << "', " << cell[i][e].input << ")";
    }
    os << "]";
  }
  os << "]";
}

void print_concat(std::ostringstream& os, const std::vector<int>& c) {
  bool contiguous = !c.empty();
  for (size_t i = 1; i < c.size(); ++i) contiguous = contiguous && c[i] == c[i - 1] + 1;
  if (contiguous) {
    os << "range(" << c.front() << ", " << c.back() + 1 << ")";
    return;
  }
  os << "[";
  for (size_t i = 0; i < c.size(); ++i) os << (i ? ", " : "") << c[i];
  os << "]";
}

// A small tokenizer/recursive-descent parser for the Python repr.
class TextParser {
 public:
  explicit TextParser(const std::string& s) : s_(s) {}

  Genotype parse() {
    Genotype g;
    expect_word("Genotype");
    expect('(');
    std::set<std::string> seen;
    while (true) {
      skip_ws();
      if (peek() == ')') break;
      const std::string key = word();
      MN_CHECK(seen.insert(key).second, err("field '" + key + "' given twice"));
      expect('=');
      if (key == "normal")
        g.normal = cell();
      else if (key == "reduce")
        g.reduce = cell();
      else if (key == "normal_concat")
        g.normal_concat = concat();
      else if (key == "reduce_concat")
        g.reduce_concat = concat();
      else
        MN_THROW(err("unknown field '" + key + "' (expected normal, normal_concat, reduce, reduce_concat)"));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      break;
    }
    expect(')');
    skip_ws();
    MN_CHECK(pos_ == s_.size(), err("unexpected text after the closing parenthesis"));
    for (const char* f : {"normal", "normal_concat", "reduce", "reduce_concat"})
      MN_CHECK(seen.count(f), err(std::string("missing field '") + f + "'"));
    return g;
  }

 private:
  std::string err(const std::string& what) const {
    return str_cat("Genotype::from_text: ", what, " at offset ", pos_, " of \"",
                   s_.substr(0, std::min<size_t>(s_.size(), 200)), s_.size() > 200 ? "...\"" : "\"");
  }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char peek() {
    skip_ws();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void expect(char c) {
    MN_CHECK(peek() == c, err(std::string("expected '") + c + "'"));
    ++pos_;
  }
  std::string word() {
    skip_ws();
    size_t b = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    MN_CHECK(pos_ > b, err("expected a name"));
    return s_.substr(b, pos_ - b);
  }
  void expect_word(const std::string& w) {
    const size_t at = pos_;
    const std::string got = word();
    if (got != w) {
      pos_ = at;
      MN_THROW(err("expected '" + w + "'"));
    }
  }
  int integer() {
    skip_ws();
    size_t b = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    MN_CHECK(pos_ > b && !(pos_ == b + 1 && s_[b] == '-'), err("expected an integer"));
    const std::string t = s_.substr(b, pos_ - b);
    MN_CHECK(t.size() < 10, err("integer " + t + " out of range"));
    return std::stoi(t);
  }
  std::string quoted() {
    const char q = peek();
    MN_CHECK(q == '\'' || q == '"', err("expected a quoted op name"));
    ++pos_;
    size_t b = pos_;
    while (pos_ < s_.size() && s_[pos_] != q) ++pos_;
    MN_CHECK(pos_ < s_.size(), err("unterminated string"));
    return s_.substr(b, pos_++ - b);
  }
  // '[' or '(' opens a sequence; returns the matching closer.
  char open_seq() {
    const char c = peek();
    MN_CHECK(c == '[' || c == '(', err("expected '[' or '('"));
    ++pos_;
    return c == '[' ? ']' : ')';
  }
  // After an element: true when the sequence continues.
  bool next_in_seq(char close) {
    const char c = peek();
    if (c == ',') {
      ++pos_;
      if (peek() == close) {  // trailing comma
        ++pos_;
        return false;
      }
      return true;
    }
    expect(close);
    return false;
  }
  GenotypeEdge edge() {
    const char close = open_seq();
    GenotypeEdge e;
    const std::string op = quoted();
    try {
      e.op = parse_primitive(op);
    } catch (const Error& ex) {
      MN_THROW(err(ex.what()));
    }
    expect(',');
    e.input = integer();
    if (peek() == ',') ++pos_;
    expect(close);
    return e;
  }
  std::vector<GenotypeNode> cell() {
    std::vector<GenotypeNode> nodes;
    const char close = open_seq();
    if (peek() == close) {
      ++pos_;
      return nodes;
    }
    do {
      GenotypeNode node;
      const char nclose = open_seq();
      if (peek() == nclose) {
        ++pos_;
      } else {
        do node.push_back(edge());
        while (next_in_seq(nclose));
      }
      nodes.push_back(node);
    } while (next_in_seq(close));
    return nodes;
  }
  std::vector<int> concat() {
    std::vector<int> r;
    const char c = peek();
    if (c == '[' || c == '(') {
      const char close = open_seq();
      if (peek() == close) {
        ++pos_;
        return r;
      }
      do r.push_back(integer());
      while (next_in_seq(close));
      return r;
    }
    expect_word("range");
    expect('(');
    int a = integer(), b;
    if (peek() == ',') {
      ++pos_;
      b = integer();
    } else {
      b = a;
      a = 0;
    }
    expect(')');
    MN_CHECK(b - a <= 1000, err("range too long"));
    for (int i = a; i < b; ++i) r.push_back(i);
    return r;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

std::string Genotype::to_text() const {
  std::ostringstream os;
  os << "Genotype(normal=";
  print_cell(os, normal);
  os << ", normal_concat=";
  print_concat(os, normal_concat);
  os << ", reduce=";
  print_cell(os, reduce);
  os << ", reduce_concat=";
  print_concat(os, reduce_concat);
  os << ")";
  return os.str();
}

Genotype Genotype::from_text(const std::string& text) {
  Genotype g = TextParser(text).parse();
  g.validate();
  return g;
}

// ---- JSON ----

namespace {

json cell_json(const std::vector<GenotypeNode>& cell) {
  json j = json::array();
  for (const auto& node : cell) {
    json n = json::array();
    for (const auto& e : node) n.push_back({{"op", primitive_name(e.op)}, {"input", e.input}});
    j.push_back(n);
  }
  return j;
}

std::vector<GenotypeNode> cell_from_json(const json& j, const char* name) {
  MN_CHECK(j.is_array(), "Genotype::from_json: '", name, "' must be an array of nodes");
  std::vector<GenotypeNode> cell;
  for (const auto& n : j) {
    MN_CHECK(n.is_array(), "Genotype::from_json: each node of '", name, "' must be an array of edges");
    GenotypeNode node;
    for (const auto& e : n) {
      GenotypeEdge edge;
      std::string op;
      if (e.is_object() && e.contains("op") && e.contains("input") && e.at("op").is_string() &&
          e.at("input").is_number_integer()) {
        op = e.at("op").get<std::string>();
        edge.input = e.at("input").get<int>();
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_number_integer()) {
        op = e[0].get<std::string>();
        edge.input = e[1].get<int>();
      } else {
        MN_THROW("Genotype::from_json: edge ", e.dump(), " in '", name,
                 "' is neither {\"op\": name, \"input\": index} nor [name, index]");
      }
      edge.op = parse_primitive(op);
      node.push_back(edge);
    }
    cell.push_back(node);
  }
  return cell;
}

std::vector<int> concat_from_json(const json& j, const char* name) {
  MN_CHECK(j.is_array(), "Genotype::from_json: '", name, "' must be an array of state indices");
  std::vector<int> r;
  for (const auto& v : j) {
    MN_CHECK(v.is_number_integer(), "Genotype::from_json: '", name, "' holds a non-integer ", v.dump());
    r.push_back(v.get<int>());
  }
  return r;
}

}  // namespace

std::string Genotype::to_json() const {
  json j = {{"normal", cell_json(normal)},
            {"normal_concat", normal_concat},
            {"reduce", cell_json(reduce)},
            {"reduce_concat", reduce_concat}};
  return j.dump();
}

Genotype Genotype::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    MN_THROW("Genotype::from_json: invalid JSON: ", e.what());
  }
  MN_CHECK(j.is_object(), "Genotype::from_json: expected an object, got ", j.type_name());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    MN_CHECK(k == "normal" || k == "normal_concat" || k == "reduce" || k == "reduce_concat",
             "Genotype::from_json: unknown key '", k, "'");
  }
  for (const char* k : {"normal", "normal_concat", "reduce", "reduce_concat"})
    MN_CHECK(j.contains(k), "Genotype::from_json: missing key '", k, "'");
  Genotype g;
  g.normal = cell_from_json(j.at("normal"), "normal");
  g.reduce = cell_from_json(j.at("reduce"), "reduce");
  g.normal_concat = concat_from_json(j.at("normal_concat"), "normal_concat");
  g.reduce_concat = concat_from_json(j.at("reduce_concat"), "reduce_concat");
  g.validate();
  return g;
}

// ---- DOT / rendering ----

namespace {

std::string state_id(const char* cell, int s) {
  return std::string(cell) + (s < 2 ? "_in" + std::to_string(s) : "_n" + std::to_string(s - 2));
}

void dot_cell(std::ostringstream& os, const std::vector<GenotypeNode>& cell,
              const std::vector<int>& concat, const char* name) {
  os << "  subgraph cluster_" << name << " {\n"
     << "    label=\"" << name << " cell\";\n"
     << "    fontsize=22;\n"
     << "    " << state_id(name, 0) << " [label=\"c_{k-2}\", fillcolor=darkseagreen2];\n"
     << "    " << state_id(name, 1) << " [label=\"c_{k-1}\", fillcolor=darkseagreen2];\n";
  for (size_t i = 0; i < cell.size(); ++i)
    os << "    " << state_id(name, static_cast<int>(i) + 2) << " [label=\"" << i
       << "\", fillcolor=lightblue];\n";
  os << "    " << name << "_out [label=\"c_{k}\", fillcolor=palegoldenrod];\n";
  for (size_t i = 0; i < cell.size(); ++i)
    for (const GenotypeEdge& e : cell[i])
      os << "    " << state_id(name, e.input) << " -> " << state_id(name, static_cast<int>(i) + 2)
         << " [label=\"" << primitive_name(e.op) << "\"];\n";
  for (int s : concat) os << "    " << state_id(name, s) << " -> " << name << "_out;\n";
  os << "  }\n";
}

// The first executable `dot` on PATH, or "".
std::string find_dot() {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string cand = dir + "/dot";
    struct stat st;
    if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(cand.c_str(), X_OK) == 0) return cand;
  }
  return "";
}

// Runs argv without a shell; returns the exit status (or -1 when it could not run).
int run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::string Genotype::to_dot() const {
  std::ostringstream os;
  os << "digraph genotype {\n"
     << "  rankdir=LR;\n"
     << "  node [style=\"rounded,filled\", shape=rect, fontname=\"helvetica\", fontsize=16, penwidth=2];\n"
     << "  edge [fontname=\"helvetica\", fontsize=12];\n";
  dot_cell(os, normal, normal_concat, "normal");
  dot_cell(os, reduce, reduce_concat, "reduce");
  os << "}\n";
  return os.str();
}

RenderResult Genotype::render(const std::string& stem, const std::vector<std::string>& formats) const {
  MN_CHECK(!stem.empty(), "Genotype::render: empty output path");
  for (const auto& f : formats) {
    bool ok = !f.empty();
    for (char c : f) ok = ok && std::isalnum(static_cast<unsigned char>(c));
    MN_CHECK(ok, "Genotype::render: invalid format '", f, "' (e.g. svg, png, pdf)");
  }
  RenderResult r;
  r.dot_file = stem + ".dot";
  {
    std::ofstream out(r.dot_file);
    MN_CHECK(out.good(), "Genotype::render: cannot write ", r.dot_file);
    out << to_dot();
    out.close();
    MN_CHECK(out.good(), "Genotype::render: error while writing ", r.dot_file);
  }
  if (formats.empty()) {
    r.message = "wrote " + r.dot_file;
    return r;
  }
  const std::string dot = find_dot();
  if (dot.empty()) {
    r.message = "wrote " + r.dot_file + "; Graphviz 'dot' not found on PATH, so no " +
                "image was rendered (install it with: apt-get install graphviz)";
    return r;
  }
  for (const auto& f : formats) {
    const std::string outfile = stem + "." + f;
    const int rc = run_program({dot, "-T" + f, "-o", outfile, r.dot_file});
    MN_CHECK(rc == 0, "Genotype::render: '", dot, " -T", f, " -o ", outfile, " ", r.dot_file,
             "' failed with status ", rc);
    r.files.push_back(outfile);
  }
  r.rendered = true;
  r.message = "wrote " + r.dot_file;
  for (const auto& f : r.files) r.message += ", " + f;
  return r;
}

}  // namespace metanas::nas
