// Tests for parent and child sessions: the duplicate exemption and how a job's ACUs count its
// children's under each reporting rule.
#include "devin_orch/core/session_family.hpp"

#include <gtest/gtest.h>

#include <array>

namespace devin_orch::core {
namespace {

TEST(IsChildOfAnother, ASessionWithAParentIsNeverADuplicate) {
  Session child{.session_id = "c1", .status = "running", .tags = {"orch-job-g0"}};
  child.parent_session_id = "p1";
  EXPECT_TRUE(is_child_of_another(child));
}

TEST(IsChildOfAnother, NoParentOrAnEmptyOneIsNotAChild) {
  Session session{.session_id = "s1", .status = "running"};
  EXPECT_FALSE(is_child_of_another(session));
  session.parent_session_id = "";
  EXPECT_FALSE(is_child_of_another(session)) << "an empty id reads as none";
  // Having children of its own does not make a session a child.
  session.parent_session_id.reset();
  session.child_session_ids = {"c1", "c2"};
  EXPECT_FALSE(is_child_of_another(session));
}

TEST(JobAcus, SeparateReportingAddsTheChildren) {
  EXPECT_EQ(job_acus(2.5, 4.0, ParentAcus::separate),
            (JobAcus{.own = 2.5, .children = 4.0, .total = 6.5}));
  EXPECT_EQ(job_acus(3.0, 0.0, ParentAcus::separate).total, 3.0) << "no children: own only";
}

TEST(JobAcus, AParentThatIncludesItsChildrenIsNeverAddedTo) {
  // The parent's 7 already holds its children's 4: not 11.
  EXPECT_EQ(job_acus(7.0, 4.0, ParentAcus::include_children),
            (JobAcus{.own = 7.0, .children = 4.0, .total = 7.0}));
  // Read a moment apart, the parent's figure can lag its children's: the larger one counts.
  EXPECT_EQ(job_acus(3.0, 4.0, ParentAcus::include_children).total, 4.0);
  EXPECT_EQ(job_acus(4.0, 4.0, ParentAcus::include_children).total, 4.0);
}

TEST(JobAcus, NegativeFiguresCountAsZero) {
  EXPECT_EQ(job_acus(-1.0, 2.0, ParentAcus::separate),
            (JobAcus{.own = 0.0, .children = 2.0, .total = 2.0}));
  EXPECT_EQ(job_acus(1.0, -2.0, ParentAcus::include_children).total, 1.0);
}

TEST(ChildrenAcus, SumsTheKnownFigures) {
  const std::array<double, 3> figures{1.25, -3.0, 2.0};
  EXPECT_DOUBLE_EQ(children_acus(figures), 3.25);
  EXPECT_EQ(children_acus({}), 0.0);
}

}  // namespace
}  // namespace devin_orch::core
