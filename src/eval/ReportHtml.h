#pragma once
// The pieces report.html and compare.html are made of (src/eval/Report.cpp, ComparePage.cpp put
// them together): the page's head and end, escaping, inline images, tables, and the scripts that
// draw the charts.
#include <ctime>
#include <ostream>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "src/eval/Report.h"

namespace slidetrain::report {

/// The page up to its navigation: doctype, <head> with the title and the shared style sheet,
/// <body>, <h1>, and a <nav> of (anchor, text) links.
void writePageStart(std::ostream& o, const std::string& title,
                    const std::vector<std::pair<std::string, std::string>>& nav);

/// The page's end: the licences (writeLicences), the chart scripts (writeChartScripts), </html>.
void writePageEnd(std::ostream& o, const std::vector<ChartSpec>& charts);

/// Chart elements (div#chart-<name>) of `charts` in a wrapping row; their specs are added to `all`.
void writeChartRow(std::ostream& o, const std::vector<ChartSpec>& charts, std::vector<ChartSpec>& all);

/// Writes `html` to `path`; throws std::runtime_error naming the file when it cannot.
void writePageFile(const std::string& path, const std::string& html);

/// `v` with a printf format ("%.4f"); "" for NaN and infinities.
std::string formatNumber(double v, const char* format = "%.4f");

/// "3.0 s" / "2 min 5 s", for run summaries.
std::string duration(double seconds);

/// "2024-05-01 13:45:10 +0200".
std::string localTime(std::time_t t);

/// "slide" of "slides": what one row of the report is.
std::string singular(const std::string& unit);

/// Text for HTML element content and attribute values: & < > " escaped.
std::string escapeHtml(const std::string& s);

/// Base64 (RFC 4648, with padding), for data: URIs.
std::string base64(std::string_view bytes);

/// JSON text safe inside <script type="application/json">: every '<' written as \u003c (JSON has
/// '<' only inside strings, where the escape means the same), so no "</script" or "<!--" is left.
std::string jsonForScript(const std::string& json);

/// A two-column table of facts (name, value); values keep their line breaks.
void writeFacts(std::ostream& o, const std::vector<ReportFact>& facts);

/// The classification report (precision, recall, F1, support per class; accuracy; macro and
/// weighted averages), and for two classes the counts and rates of the positive class.
void writeClassificationTables(std::ostream& o, const Metrics& m, const std::vector<std::string>& classes);

/// The table of rows: id (with a link to its viewer page, if any), label, prediction, score,
/// patches, note, heatmap (preview inline, linked to the PNG). A labelled row whose prediction differs is marked.
void writeRowTable(std::ostream& o, const std::vector<ReportRow>& rows, const std::string& unit);

/// The folded section with the licences of the inlined JavaScript.
void writeLicences(std::ostream& o);

/// The vendored scripts, the charts' specs (JSON) and the script that hands each to vegaEmbed
/// into the element chart-<name>.
void writeChartScripts(std::ostream& o, const std::vector<ChartSpec>& charts);

}  // namespace slidetrain::report
