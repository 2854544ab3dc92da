#include "nightjar/components/postgres/globals.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

#include "nightjar/core/error.hpp"

namespace nightjar::postgres {

namespace {

struct Tok {
    enum Type { Word, Ident, Str, Num, Punct } type = Word;
    std::string text;  // Word: as written; Ident/Str: unquoted; Num: as written; Punct: the character
    int line = 0;
};

struct RawStatement {
    std::vector<Tok> toks;
    int line = 0;
    std::string sql;
};

[[noreturn]] void refuse(int line, const std::string& why) {
    throw Error(Kind::Verification, "globals line " + std::to_string(line) + ": " + why +
                                        ": pg_dumpall --globals-only writes no such thing; refused");
}

std::string excerpt(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 60)) out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    return s.size() > 60 ? out + "…" : out;
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool word_start(unsigned char c) {
    return std::isalpha(c) || c == '_' || c >= 0x80;
}

bool word_char(unsigned char c) {
    return word_start(c) || std::isdigit(c) || c == '$';
}

bool alnum_key(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(),
                                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

// Splits the text into statements the way the server's lexer would (standard_conforming_strings on), refusing
// every construct pg_dumpall --globals-only does not write.
std::vector<RawStatement> split(std::string_view text) {
    std::vector<RawStatement> out;
    RawStatement cur;
    std::size_t cur_begin = 0;
    int line = 1;
    int semicolon_line = 0;  // the line of the last ';': nothing but a comment may follow it there
    bool line_blank = true;  // only whitespace so far on this line
    std::string restrict_key;
    bool unrestricted = false;
    std::size_t prev_end = std::string_view::npos;  // where the previous token ended
    Tok::Type prev_type = Tok::Punct;
    std::size_t i = 0;
    const std::size_t n = text.size();
    auto begin_token = [&](std::size_t at) {
        if (semicolon_line == line)
            refuse(line, "a second statement after ';' on the same line (" + excerpt(text.substr(at)) + ")");
        if (unrestricted) refuse(line, "a statement after \\unrestrict");
        if (cur.toks.empty()) {
            cur.line = line;
            cur_begin = at;
        }
        line_blank = false;
    };
    while (i < n) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            ++line;
            line_blank = true;
            ++i;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            ++i;
            continue;
        }
        if (c == 0 || c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", c);
            refuse(line, std::string("control character ") + hex);
        }
        if (c == '-' && i + 1 < n && text[i + 1] == '-') {  // the server ends a comment at \n or \r
            while (i < n && text[i] != '\n' && text[i] != '\r') {
                if (text[i] == '\0') refuse(line, "control character 0x00");
                ++i;
            }
            continue;
        }
        if (c == '/' && i + 1 < n && text[i + 1] == '*') refuse(line, "a block comment");
        if (c == '\\') {
            std::size_t eol = text.find('\n', i);
            std::string_view cmd = text.substr(i, eol == std::string_view::npos ? n - i : eol - i);
            while (!cmd.empty() && cmd.back() == '\r') cmd.remove_suffix(1);
            const bool alone = line_blank && cur.toks.empty();
            if (alone && cmd.rfind("\\restrict ", 0) == 0 && restrict_key.empty() &&
                alnum_key(cmd.substr(10))) {
                restrict_key = std::string(cmd.substr(10));
            } else if (alone && cmd.rfind("\\unrestrict ", 0) == 0 && !restrict_key.empty() &&
                       !unrestricted && cmd.substr(12) == restrict_key) {
                unrestricted = true;
            } else {
                std::string name(cmd.substr(0, std::min<std::size_t>(cmd.find(' '), 20)));
                refuse(line, "psql meta-command " + excerpt(name) +
                                 " (only \\restrict KEY and \\unrestrict KEY "
                                 "are accepted, alone on their lines)");
            }
            i += cmd.size();
            continue;
        }
        if (c == '$') refuse(line, "dollar quoting or a parameter ($)");
        if (c == ';') {
            if (cur.toks.empty()) refuse(line, "an empty statement");
            cur.sql = std::string(text.substr(cur_begin, i - cur_begin));
            out.push_back(std::move(cur));
            cur = {};
            semicolon_line = line;
            prev_end = std::string_view::npos;
            ++i;
            continue;
        }
        if (c == '\'' || c == '"') {
            if (prev_end == i && (prev_type == Tok::Word || prev_type == Tok::Num))
                refuse(line, "a prefixed string literal or identifier (E'…', U&\"…\", B'…', X'…')");
            begin_token(i);
            Tok t{c == '\'' ? Tok::Str : Tok::Ident, "", line};
            std::size_t j = i + 1;
            for (;;) {
                if (j >= n) refuse(t.line, "an unterminated quoted string or identifier");
                if (text[j] == '\0') refuse(line, "control character 0x00");
                if (text[j] == static_cast<char>(c)) {
                    if (j + 1 < n && text[j + 1] == static_cast<char>(c)) {
                        t.text.push_back(static_cast<char>(c));
                        j += 2;
                        continue;
                    }
                    break;
                }
                if (text[j] == '\n') ++line;
                t.text.push_back(text[j]);
                ++j;
            }
            if (t.type == Tok::Ident && t.text.empty()) refuse(t.line, "an empty quoted identifier");
            cur.toks.push_back(std::move(t));
            i = j + 1;
            prev_end = i;
            prev_type = cur.toks.back().type;
            continue;
        }
        if (word_start(c)) {
            begin_token(i);
            std::size_t j = i;
            while (j < n && word_char(static_cast<unsigned char>(text[j]))) ++j;
            cur.toks.push_back({Tok::Word, std::string(text.substr(i, j - i)), line});
            i = prev_end = j;
            prev_type = Tok::Word;
            continue;
        }
        if (std::isdigit(c) ||
            (c == '-' && i + 1 < n && std::isdigit(static_cast<unsigned char>(text[i + 1])))) {
            begin_token(i);
            std::size_t j = i + 1;
            while (j < n && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
            if (j + 1 < n && text[j] == '.' && std::isdigit(static_cast<unsigned char>(text[j + 1]))) {
                ++j;
                while (j < n && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
            }
            if (j < n && (word_char(static_cast<unsigned char>(text[j])) || text[j] == '.'))
                refuse(line, "a malformed number (" + excerpt(text.substr(i)) + ")");
            cur.toks.push_back({Tok::Num, std::string(text.substr(i, j - i)), line});
            i = prev_end = j;
            prev_type = Tok::Num;
            continue;
        }
        if (c == ',' || c == '(' || c == ')' || c == '=' || c == '.') {
            begin_token(i);
            cur.toks.push_back({Tok::Punct, std::string(1, static_cast<char>(c)), line});
            ++i;
            prev_end = i;
            prev_type = Tok::Punct;
            continue;
        }
        refuse(line, std::string("unexpected character '") + static_cast<char>(c) + "'");
    }
    if (!cur.toks.empty())
        refuse(cur.line, "a statement not ended by ';' (" + excerpt(text.substr(cur_begin)) + ")");
    if (!restrict_key.empty() && !unrestricted) refuse(line, "\\restrict without its \\unrestrict");
    return out;
}

// A recursive-descent check of one statement against the forms pg_dumpall writes.
class Grammar {
public:
    explicit Grammar(const RawStatement& s) : s_(s) {}

    PgGlobalsStatement parse() {
        PgGlobalsStatement st{s_.line, PgGlobalsKind::Session, s_.sql, {}};
        if (take("SET")) {
            session_set();
        } else if (take("CREATE")) {
            if (take("ROLE")) {
                st.kind = PgGlobalsKind::CreateRole;
                st.objects.push_back(name());
            } else if (take("TABLESPACE")) {
                st.kind = PgGlobalsKind::CreateTablespace;
                st.objects.push_back(name());
                if (take("OWNER")) name();
                expect("LOCATION");
                string_literal();
            } else {
                fail("only CREATE ROLE and CREATE TABLESPACE are accepted");
            }
        } else if (take("ALTER")) {
            if (take("ROLE")) {
                st.kind = PgGlobalsKind::AlterRole;
                st.objects.push_back(name());
                alter_role();
            } else if (take("TABLESPACE")) {
                st.kind = PgGlobalsKind::AlterTablespace;
                st.objects.push_back(name());
                alter_tablespace();
            } else {
                fail("only ALTER ROLE and ALTER TABLESPACE are accepted");
            }
        } else if (take("COMMENT")) {
            expect("ON");
            st.kind = object_kind();
            st.objects.push_back(name());
            expect("IS");
            if (!take("NULL")) string_literal();
        } else if (take("SECURITY")) {
            expect("LABEL");
            if (take("FOR")) name();
            expect("ON");
            st.kind = object_kind();
            st.objects.push_back(name());
            expect("IS");
            if (!take("NULL")) string_literal();
        } else if (take("GRANT")) {
            grant(st, false);
        } else if (take("REVOKE")) {
            grant(st, true);
        } else {
            fail("not a statement pg_dumpall --globals-only writes");
        }
        if (i_ < s_.toks.size()) fail("unexpected \"" + s_.toks[i_].text + "\"");
        return st;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        int line = i_ < s_.toks.size() ? s_.toks[i_].line : s_.line;
        refuse(line, why + " (" + excerpt(s_.sql) + ")");
    }
    bool peek(const char* kw, std::size_t ahead = 0) const {
        return i_ + ahead < s_.toks.size() && s_.toks[i_ + ahead].type == Tok::Word &&
               upper(s_.toks[i_ + ahead].text) == kw;
    }
    bool take(const char* kw) {
        if (!peek(kw)) return false;
        ++i_;
        return true;
    }
    void expect(const char* kw) {
        if (!take(kw)) fail(std::string("expected ") + kw);
    }
    bool take_punct(char c) {
        if (i_ < s_.toks.size() && s_.toks[i_].type == Tok::Punct && s_.toks[i_].text[0] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    void expect_punct(char c) {
        if (!take_punct(c)) fail(std::string("expected '") + c + "'");
    }
    // A role, tablespace, provider or setting name; unquoted names fold to lower case as the server does.
    std::string name() {
        if (i_ >= s_.toks.size()) fail("expected a name");
        const Tok& t = s_.toks[i_];
        if (t.type == Tok::Ident) {
            ++i_;
            return t.text;
        }
        if (t.type == Tok::Word) {
            ++i_;
            return lower(t.text);
        }
        fail("expected a name");
    }
    std::string dotted_name() {
        std::string n = name();
        while (take_punct('.')) n += "." + name();
        return n;
    }
    void string_literal() {
        if (i_ >= s_.toks.size() || s_.toks[i_].type != Tok::Str) fail("expected a string literal");
        ++i_;
    }
    void integer() {
        if (i_ >= s_.toks.size() || s_.toks[i_].type != Tok::Num ||
            s_.toks[i_].text.find('.') != std::string::npos)
            fail("expected an integer");
        ++i_;
    }
    // A setting's value list: literals, names and numbers separated by commas.
    std::string values() {
        std::string first;
        do {
            if (i_ >= s_.toks.size() || s_.toks[i_].type == Tok::Punct) fail("expected a value");
            if (first.empty()) first = lower(s_.toks[i_].text);
            ++i_;
        } while (take_punct(','));
        return first;
    }
    PgGlobalsKind object_kind() {
        if (take("ROLE")) return PgGlobalsKind::AlterRole;
        if (take("TABLESPACE")) return PgGlobalsKind::AlterTablespace;
        fail("only a role or a tablespace may be commented or labelled");
    }

    void session_set() {
        static const std::set<std::string> allowed{"client_encoding", "standard_conforming_strings",
                                                   "default_transaction_read_only"};
        // Client encodings whose multi-byte characters may contain the bytes of ' " \ (the server would then
        // read the statements differently from this check).
        static const std::set<std::string> unsafe{"sjis", "shift_jis_2004", "big5", "gbk",
                                                  "uhc",  "gb18030",        "johab"};
        std::string setting = name();
        if (!allowed.count(setting)) fail("SET " + setting + " is not a setting pg_dumpall writes");
        if (!take("TO")) expect_punct('=');
        std::string value = values();
        if (setting == "standard_conforming_strings" && value != "on")
            fail("standard_conforming_strings must stay on");
        if (setting == "client_encoding" && unsafe.count(value))
            fail("client encoding " + value + " is not accepted (use a dump taken in UTF8)");
    }

    void alter_role() {
        if (take("WITH")) {
            static const std::set<std::string> flags{
                "SUPERUSER",    "NOSUPERUSER",   "INHERIT",    "NOINHERIT",  "CREATEROLE",
                "NOCREATEROLE", "CREATEDB",      "NOCREATEDB", "LOGIN",      "NOLOGIN",
                "REPLICATION",  "NOREPLICATION", "BYPASSRLS",  "NOBYPASSRLS"};
            int n = 0;
            while (i_ < s_.toks.size()) {
                ++n;
                if (s_.toks[i_].type == Tok::Word && flags.count(upper(s_.toks[i_].text))) {
                    ++i_;
                } else if (take("CONNECTION")) {
                    expect("LIMIT");
                    integer();
                } else if (take("PASSWORD") || take("ENCRYPTED")) {
                    if (upper(s_.toks[i_ - 1].text) == "ENCRYPTED") expect("PASSWORD");
                    if (!take("NULL")) string_literal();
                } else if (take("VALID")) {
                    expect("UNTIL");
                    string_literal();
                } else {
                    fail("not a role attribute pg_dumpall writes");
                }
            }
            if (n == 0) fail("ALTER ROLE … WITH without attributes");
            return;
        }
        if (take("IN")) {
            expect("DATABASE");
            name();
        }
        expect("SET");
        std::string setting = dotted_name();
        static const std::set<std::string> loaders{"session_preload_libraries", "local_preload_libraries"};
        if (loaders.count(setting)) fail(setting + " would load code into the server for this role");
        if (!take("TO")) expect_punct('=');
        values();
    }

    void alter_tablespace() {
        if (take("OWNER")) {
            expect("TO");
            name();
            return;
        }
        expect("SET");
        expect_punct('(');
        do {
            name();
            expect_punct('=');
            values_one();
        } while (take_punct(','));
        expect_punct(')');
    }
    void values_one() {
        if (i_ >= s_.toks.size() || s_.toks[i_].type == Tok::Punct) fail("expected a value");
        ++i_;
    }

    // GRANT/REVOKE on a parameter or a tablespace, or GRANT role TO member.
    void grant(PgGlobalsStatement& st, bool revoke) {
        bool on = false;
        for (std::size_t j = i_; j < s_.toks.size(); ++j) {
            if (s_.toks[j].type == Tok::Word && upper(s_.toks[j].text) == (revoke ? "FROM" : "TO")) break;
            if (s_.toks[j].type == Tok::Word && upper(s_.toks[j].text) == "ON") on = true;
        }
        if (!on) {
            if (revoke) fail("only REVOKE … ON PARAMETER / TABLESPACE is accepted");
            st.kind = PgGlobalsKind::Membership;
            do name();
            while (take_punct(','));
            expect("TO");
            do st.objects.push_back(name());
            while (take_punct(','));
            if (take("WITH")) {
                do {
                    if (!take("ADMIN") && !take("INHERIT") && !take("SET"))
                        fail("expected ADMIN, INHERIT or SET");
                    if (!take("OPTION") && !take("TRUE") && !take("FALSE"))
                        fail("expected OPTION, TRUE or FALSE");
                } while (take_punct(','));
            }
            granted_by();
            return;
        }
        if (revoke && take("GRANT")) {
            expect("OPTION");
            expect("FOR");
        }
        bool tablespace_privileges = true, parameter_privileges = true;
        do {
            if (take("ALL")) {
                take("PRIVILEGES");
            } else if (take("CREATE")) {
                parameter_privileges = false;
            } else if (take("SET")) {
                tablespace_privileges = false;
            } else if (take("ALTER")) {
                expect("SYSTEM");
                tablespace_privileges = false;
            } else {
                fail("not a privilege pg_dumpall writes");
            }
        } while (take_punct(','));
        expect("ON");
        std::vector<std::string> tablespace;
        if (take("PARAMETER")) {
            if (!parameter_privileges) fail("CREATE is not a parameter privilege");
            st.kind = PgGlobalsKind::ParameterGrant;
            do dotted_name();
            while (take_punct(','));
        } else if (take("TABLESPACE")) {
            if (!tablespace_privileges) fail("not a tablespace privilege");
            st.kind = PgGlobalsKind::AlterTablespace;
            tablespace.push_back(name());
        } else {
            fail("only privileges on a parameter or a tablespace are accepted");
        }
        expect(revoke ? "FROM" : "TO");
        std::vector<std::string> grantees;
        do grantees.push_back(name());
        while (take_punct(','));
        if (!revoke && take("WITH")) {
            expect("GRANT");
            expect("OPTION");
        }
        granted_by();
        if (revoke && !take("CASCADE")) take("RESTRICT");
        st.objects = st.kind == PgGlobalsKind::ParameterGrant ? grantees : tablespace;
    }
    void granted_by() {
        if (take("GRANTED")) {
            expect("BY");
            name();
        }
    }

    const RawStatement& s_;
    std::size_t i_ = 0;
};

}  // namespace

PgGlobalsScript parse_pg_globals(std::string_view text) {
    if (text.size() > kPgGlobalsLimit)
        throw Error(Kind::Verification, "globals: larger than " + std::to_string(kPgGlobalsLimit >> 20) +
                                            " MiB: not a globals dump; refused");
    PgGlobalsScript script;
    for (const auto& raw : split(text)) script.statements.push_back(Grammar(raw).parse());
    return script;
}

}  // namespace nightjar::postgres
