// Cohort CSV: column order, quoting, relative paths, classes, and errors naming file:line.
#include "wsi/Cohort.h"

#include <gtest/gtest.h>

#include <regex>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

using test::TempDir;
using test::writeText;

TEST(CohortTest, ReadsColumnsInAnyOrderWithQuotesAndRelativePaths) {
  TempDir dir;
  const std::string csv = dir.file("cohort.csv");
  writeText(csv,
            "\xEF\xBB\xBFlabel,path,slide_id,split,mpp,notes\r\n"
            "tumor,slides/a.svs,A,train,0.25,\"x, y\"\n"
            "\n"
            "normal,/abs/b.tiff,\"B \"\"2\"\"\",test,,\n"
            "normal,../c.tif,C,,,\n");
  const Cohort c = Cohort::read(csv);
  ASSERT_EQ(c.slides.size(), 3u);
  EXPECT_EQ(c.classes, (std::vector<std::string>{"normal", "tumor"}));
  EXPECT_EQ(c.slides[0].slideId, "A");
  EXPECT_EQ(c.slides[0].path, dir.path() + "/slides/a.svs");
  EXPECT_EQ(c.slides[0].labelIndex, 1);
  ASSERT_TRUE(c.slides[0].mpp);
  EXPECT_DOUBLE_EQ(*c.slides[0].mpp, 0.25);
  EXPECT_EQ(c.slides[1].slideId, "B \"2\"");
  EXPECT_EQ(c.slides[1].path, "/abs/b.tiff");
  EXPECT_EQ(c.slides[1].labelIndex, 0);
  EXPECT_FALSE(c.slides[1].mpp);
  EXPECT_EQ(c.slides[2].path,
            std::filesystem::path(dir.path()).parent_path().string() + "/c.tif");
  EXPECT_EQ(c.indicesOfSplit("test"), (std::vector<size_t>{1}));
  EXPECT_EQ(c.indicesOfSplit(""), (std::vector<size_t>{2}));

  const std::string copy = dir.file("copy.csv");
  c.write(copy);
  const Cohort back = Cohort::read(copy);
  ASSERT_EQ(back.slides.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.slides[i].slideId, c.slides[i].slideId);
    EXPECT_EQ(back.slides[i].path, c.slides[i].path);
    EXPECT_EQ(back.slides[i].split, c.slides[i].split);
    EXPECT_EQ(back.slides[i].mpp, c.slides[i].mpp);
  }
}

TEST(CohortTest, ExplicitClassOrderReindexesAndIsChecked) {
  TempDir dir;
  const std::string csv = dir.file("cohort.csv");
  writeText(csv, "slide_id,path,label\nA,a.svs,tumor\nB,b.svs,normal\nC,c.svs,tumor\n");
  Cohort c = Cohort::read(csv);
  EXPECT_EQ(c.classes, (std::vector<std::string>{"normal", "tumor"}));  // sorted by default
  EXPECT_EQ(c.slides[0].labelIndex, 1);
  c.setClassOrder({"tumor", "normal"});  // "normal" is now the positive (last) class
  EXPECT_EQ(c.classes, (std::vector<std::string>{"tumor", "normal"}));
  EXPECT_EQ(c.slides[0].labelIndex, 0);
  EXPECT_EQ(c.slides[1].labelIndex, 1);
  auto error = [&](const std::vector<std::string>& order) {
    Cohort d = Cohort::read(csv);
    try {
      d.setClassOrder(order);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error({"normal"}).find("labelled 'tumor', which [normal] does not list"), std::string::npos);
  EXPECT_NE(error({"normal", "tumor", "benign"}).find("no slide of the cohort is labelled 'benign'"),
            std::string::npos);
  EXPECT_NE(error({"tumor", "tumor", "normal"}).find("listed twice"), std::string::npos);
}

TEST(CohortTest, LabelsAreOptionalForPrediction) {
  TempDir dir;
  const std::string csv = dir.file("cohort.csv");
  writeText(csv, "slide_id,path,label\nA,a.svs,tumor\nB,b.svs,\n");
  const Cohort c = Cohort::read(csv, /*requireLabels=*/false);
  EXPECT_EQ(c.classes, (std::vector<std::string>{"tumor"}));
  EXPECT_EQ(c.slides[1].labelIndex, -1);
  EXPECT_EQ(c.unlabelledCount(), 1u);
  EXPECT_EQ(c.indicesOfSplit("all").size(), 2u);
  try {
    Cohort::read(csv);
    ADD_FAILURE() << "training needs every label";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(":3: column 'label' is empty (training needs a label"),
              std::string::npos) << e.what();
  }
  const std::string bare = dir.file("bare.csv");
  writeText(bare, "slide_id,path\nA,a.svs\n");
  EXPECT_EQ(Cohort::read(bare, false).slides[0].labelIndex, -1);
  EXPECT_THROW(Cohort::read(bare), DataError);
}

TEST(CohortTest, RepeatedUnknownHeaderColumnsAreCounted) {
  // Spreadsheets export empty trailing header cells ("label,,") and notes columns may repeat:
  // rows are checked against the header's field count, not its distinct names. (Found by the
  // cohort fuzz target: a row as long as the distinct names was accepted and its mpp read past
  // the row's fields.)
  TempDir dir;
  const std::string csv = dir.file("cohort.csv");
  writeText(csv, "slide_id,path,label,,notes,notes,mpp\nA,a.svs,tumor,,x,y,0.5\n");
  const Cohort c = Cohort::read(csv);
  ASSERT_EQ(c.slides.size(), 1u);
  EXPECT_EQ(*c.slides[0].mpp, 0.5);
  writeText(csv, "slide_id,path,,s,,mpp\nS,s,,,\n");
  try {
    Cohort::read(csv, /*requireLabels=*/false);
    ADD_FAILURE() << "a short row was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("cohort.csv:2: expected 6 fields as in the header, got 5"),
              std::string::npos) << e.what();
  }
}

TEST(CohortTest, ErrorsNameFileLineAndColumn) {
  struct Case {
    std::string text, pattern;
  };
  const std::vector<Case> cases = {
      {"slide_id,path\nA,a.svs\n", "cohort\\.csv:1: header lacks column 'label'"},
      {"slide_id,path,label\nA,a.svs,tumor\nB,b.svs\n",
       "cohort\\.csv:3: expected 3 fields as in the header, got 2"},
      {"slide_id,path,label,mpp\nA,a.svs,tumor,fast\n",
       "cohort\\.csv:2: column 'mpp': expected a positive number, got 'fast'"},
      {"slide_id,path,label,split\nA,a.svs,tumor,training\n",
       "cohort\\.csv:2: column 'split': expected train, val, test or empty"},
      {"slide_id,path,label\nA,a.svs,tumor\nA,b.svs,normal\n",
       "cohort\\.csv:3: column 'slide_id': duplicate 'A' \\(first on line 2\\)"},
      {"slide_id,path,label\nA,,tumor\n", "cohort\\.csv:2: column 'path' is empty"},
      {"slide_id,path,label\nA,\"a.svs,tumor\n", "cohort\\.csv:2: unterminated quoted field"},
      {"slide_id,path,label\n", "cohort\\.csv: the cohort lists no slides"},
      {"", "cohort\\.csv: empty file"},
  };
  TempDir dir;
  const std::string csv = dir.file("cohort.csv");
  for (const auto& c : cases) {
    writeText(csv, c.text);
    std::string message;
    try {
      Cohort::read(csv);
    } catch (const DataError& e) {
      message = e.what();
    }
    EXPECT_TRUE(std::regex_search(message, std::regex(c.pattern)))
        << "input:\n" << c.text << "message: " << message;
  }
  EXPECT_THROW(Cohort::read(dir.file("missing.csv")), DataError);
}

}  // namespace
}  // namespace slidetrain::wsi
