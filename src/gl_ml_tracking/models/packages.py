"""Packages of the package registry and their files."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import TABLE_PREFIX, Base, BigId


class Package(Base):
    __tablename__ = TABLE_PREFIX + "packages"
    __table_args__ = (
        UniqueConstraint("project_id", "package_type", "name", "version", name="uq_glml_packages_identity"),
        Index("ix_glml_packages_project_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    version: Mapped[str] = mapped_column(String(255), nullable=False)
    package_type: Mapped[str] = mapped_column(String(32), nullable=False, default="generic")
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="default")
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)

    files: Mapped[list["PackageFile"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="raise", back_populates="package"
    )


class PackageFile(Base):
    __tablename__ = TABLE_PREFIX + "package_files"
    __table_args__ = (UniqueConstraint("package_id", "file_path", name="uq_glml_package_files_path"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    package_id: Mapped[int] = mapped_column(BigId, ForeignKey(Package.id, ondelete="CASCADE"), nullable=False)
    file_path: Mapped[str] = mapped_column(String(1024), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    md5: Mapped[Optional[str]] = mapped_column(String(32))
    content_type: Mapped[Optional[str]] = mapped_column(String(255))
    # Indexed: deletes and gc look rows up by the object they point at.
    storage_key: Mapped[str] = mapped_column(String(1024), nullable=False, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)

    package: Mapped[Package] = relationship(back_populates="files", lazy="raise")
