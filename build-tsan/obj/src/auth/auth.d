build-tsan/obj/src/auth/auth.o: src/auth/auth.c src/auth/auth.h
src/auth/auth.h:
